// A model of PyTorch's CUDA caching allocator: the bytes a training step allocates and
// reserves. It follows cnnarch/planner/allocator.py (`replay`) with the default settings
// (`AllocatorConfig()`: no expandable segments, no max_split_size) and returns the same numbers.
// A block's address is (segment number, offset), compared in that order as Python compares
// segment * 2**50 + offset; sizes stay exact integers.
(function () {
  var MIN_BLOCK = 512; // every size a multiple of it, at least it
  var SMALL_SIZE = 1 << 20; // the largest request of the small pool
  var SMALL_BUFFER = 2 << 20; // a small pool's segment
  var LARGE_BUFFER = 20 << 20; // a large segment for requests under MIN_LARGE_ALLOC
  var MIN_LARGE_ALLOC = 10 << 20; // from here a request gets a segment of its own...
  var ROUND_LARGE = 2 << 20; // ...rounded up to a multiple of 2 MiB

  function roundUp(n, step) {
    var rest = n % step;
    return rest ? n + step - rest : n;
  }
  function roundSize(nbytes) { return Math.max(MIN_BLOCK, roundUp(nbytes, MIN_BLOCK)); }
  function segmentSize(size) {
    if (size <= SMALL_SIZE) { return SMALL_BUFFER; }
    return size < MIN_LARGE_ALLOC ? LARGE_BUFFER : roundUp(size, ROUND_LARGE);
  }

  // Free blocks are sorted by (size, segment, offset): is `b` before that key?
  function before(b, size, segment, offset) {
    if (b.size !== size) { return b.size < size; }
    return b.segment !== segment ? b.segment < segment : b.offset < offset;
  }
  // The first index of `free` not before the key.
  function lowerBound(free, size, segment, offset) {
    var low = 0, high = free.length;
    while (low < high) {
      var mid = (low + high) >> 1;
      if (before(free[mid], size, segment, offset)) { low = mid + 1; } else { high = mid; }
    }
    return low;
  }
  function insert(free, b) { free.splice(lowerBound(free, b.size, b.segment, b.offset), 0, b); }
  function remove(free, b) { free.splice(lowerBound(free, b.size, b.segment, b.offset), 1); }

  function block(segment, offset, size, small, prev, next) {
    return {segment: segment, offset: offset, size: size, small: small, allocated: false,
            prev: prev, next: next};
  }

  // The allocator's state: its two pools' free blocks, the bytes held and their peaks.
  function Allocator(limit) {
    this.limit = limit;
    this.small = [];
    this.large = [];
    this.allocated = 0;
    this.reserved = 0;
    this.maxAllocated = 0;
    this.maxReserved = 0;
    this.retries = 0;
    this.segments = 0;
  }

  // The block serving `nbytes`, or null: out of memory even with the cache freed.
  Allocator.prototype.malloc = function (nbytes) {
    var size = roundSize(nbytes), small = size <= SMALL_SIZE;
    var free = small ? this.small : this.large;
    var index = lowerBound(free, size, 0, 0), b; // best fit: the smallest, then lowest
    if (index < free.length) {
      b = free.splice(index, 1)[0];
    } else {
      b = this.segment(small, size);
      if (b === null) {
        this.releaseCache();
        b = this.segment(small, size);
        if (b === null) { return null; }
      }
    }
    var rest = b.size - size;
    if (small ? rest >= MIN_BLOCK : rest > SMALL_SIZE) { // split: the request takes the front
      var front = block(b.segment, b.offset, size, small, b.prev, b);
      if (b.prev !== null) { b.prev.next = front; }
      b.prev = front;
      b.offset += size;
      b.size = rest;
      insert(free, b);
      b = front;
    }
    b.allocated = true;
    this.allocated += b.size;
    this.maxAllocated = Math.max(this.maxAllocated, this.allocated);
    return b;
  };

  // Back to the cache, merged with its free neighbors.
  Allocator.prototype.free = function (b) {
    var free = b.small ? this.small : this.large, prev = b.prev, next = b.next;
    b.allocated = false;
    this.allocated -= b.size;
    if (prev !== null && !prev.allocated) {
      remove(free, prev);
      b.offset = prev.offset;
      b.size += prev.size;
      b.prev = prev.prev;
      if (b.prev !== null) { b.prev.next = b; }
    }
    if (next !== null && !next.allocated) {
      remove(free, next);
      b.size += next.size;
      b.next = next.next;
      if (b.next !== null) { b.next.prev = b; }
    }
    insert(free, b);
  };

  // A new segment for a request no cached block serves, or null over the limit.
  Allocator.prototype.segment = function (small, size) {
    var nbytes = segmentSize(size);
    if (this.limit !== null && this.reserved + nbytes > this.limit) { return null; }
    this.reserved += nbytes;
    this.maxReserved = Math.max(this.maxReserved, this.reserved);
    this.segments += 1;
    return block(this.segments, 0, nbytes, small, null, null);
  };

  // Free every cached segment that is wholly free (a free block that is not split).
  Allocator.prototype.releaseCache = function () {
    this.retries += 1;
    var self = this;
    [this.large, this.small].forEach(function (free) {
      for (var i = free.length - 1; i >= 0; i--) {
        if (free[i].prev === null && free[i].next === null) {
          self.reserved -= free.splice(i, 1)[0].size;
        }
      }
    });
  };

  // The step's events in order: by clock, frees first, each kind by index. Event e < n frees
  // storage e, event n + i allocates storage i, so that comparing events breaks clock ties.
  function stepOrder(step) {
    var n = step.length, clock = new Array(2 * n), events = new Array(2 * n);
    for (var i = 0; i < n; i++) {
      clock[i] = step[i][2];
      clock[n + i] = step[i][1];
    }
    for (i = 0; i < 2 * n; i++) { events[i] = i; }
    return events.sort(function (a, b) {
      return clock[a] < clock[b] ? -1 : clock[a] > clock[b] ? 1 : a - b;
    });
  }

  // persistent: bytes allocated once, in order; step: [nbytes, start, stop] replayed twice;
  // limit: bytes the allocator may reserve, null for none.
  function replay(persistent, step, limit) {
    var allocator = new Allocator(limit === undefined ? null : limit);
    function result(outOfMemory) {
      return {maxAllocated: allocator.maxAllocated, maxReserved: allocator.maxReserved,
              outOfMemory: outOfMemory, retries: allocator.retries};
    }
    for (var i = 0; i < persistent.length; i++) {
      if (allocator.malloc(persistent[i]) === null) { return result(true); }
    }
    var order = stepOrder(step), n = step.length;
    for (var pass = 0; pass < 2; pass++) {
      var blocks = new Array(n);
      for (var e = 0; e < order.length; e++) {
        var index = order[e] % n, nbytes = step[index][0];
        if (order[e] < n) {
          if (blocks[index]) { allocator.free(blocks[index]); }
        } else if (nbytes) { // PyTorch hands an empty tensor no block
          blocks[index] = allocator.malloc(nbytes);
          if (blocks[index] === null) { return result(true); }
        }
      }
    }
    return result(false);
  }

  window.cnnarchAllocator = {replay: replay};
})();
