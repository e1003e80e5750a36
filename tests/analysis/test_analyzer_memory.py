"""Memory of inference and of a training step, against counts made by hand (float32: 4 bytes)."""

from __future__ import annotations

from torch import nn

import cnnarch

F32 = 4


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(100, 50, bias=False), nn.ReLU(), nn.Linear(50, 10, bias=False))


def test_mlp_inference_memory():
    batch = 4
    summary = cnnarch.analyze(mlp(), (100,), batch_size=batch)
    params = (100 * 50 + 50 * 10) * F32
    assert summary.param_bytes == params
    assert summary.input_bytes == batch * 100 * F32
    # outputs of fc1, relu (not in place) and fc2
    assert summary.activation_bytes == batch * (50 + 50 + 10) * F32
    # Most alive at once: while relu runs, its input and output (fc1's output dies after it).
    assert summary.inference_peak_bytes == params + batch * 100 * F32 + 2 * batch * 50 * F32


def test_mlp_training_step():
    batch = 4
    params = (100 * 50 + 50 * 10) * F32
    x = batch * 100 * F32
    for optimizer, state_copies in (("sgd", 0), ("momentum", 1)):
        t = cnnarch.analyze(mlp(), (100,), batch_size=batch, train=True, optimizer=optimizer)
        t = t.training
        assert t.params_bytes == t.grads_bytes == params
        assert t.optimizer_state_bytes == state_copies * params
        # Autograd keeps x (the input, counted apart), the weights (params) and relu's output,
        # which fc2 also needs: one (4, 50) tensor.
        assert t.saved_bytes == batch * 50 * F32
        # The peak is the last backward op, fc1's weight gradient: by then both weight
        # gradients exist, and the (4, 50) gradient reaching fc1 is still alive.
        assert t.peak_bytes == params + x + t.optimizer_state_bytes + params + batch * 50 * F32
        assert t.peak_phase == "backward"
    adam = cnnarch.analyze(mlp(), (100,), batch_size=batch, train=True, optimizer="adam").training
    assert adam.optimizer_state_bytes == 2 * params
    # Adam's step holds two temporaries the size of the largest weight (fc1's) next to the
    # grads: more than the backward pass.
    assert adam.peak_bytes == params + x + 2 * params + params + 2 * 100 * 50 * F32
    assert adam.peak_phase == "step"


def test_adam_step_transient_is_two_copies_of_the_largest_parameter():
    summary = cnnarch.analyze(
        nn.Linear(1000, 1000, bias=False), (1000,), train=True, optimizer="adam"
    )
    t = summary.training
    weight = 1000 * 1000 * F32
    assert t.step_transient_bytes == 2 * weight
    # params + input + state (2 copies) + grads + sqrt and division temporaries of the step
    assert t.peak_bytes == weight + 1000 * F32 + 2 * weight + weight + 2 * weight
    assert t.peak_phase == "step"


def test_small_cnn_training_step():
    batch = 2
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),  # -> (2, 4, 8, 8): 512 elements
        nn.ReLU(),
        nn.MaxPool2d(2),  # -> (2, 4, 4, 4): 128 elements, and 128 int64 indices
        nn.Flatten(),
        nn.Linear(64, 10, bias=False),
    )
    summary = cnnarch.analyze(model, (3, 8, 8), batch_size=batch, train=True)
    t = summary.training
    params = (4 * 3 * 9 + 64 * 10) * F32
    x = batch * 3 * 64 * F32
    relu_out, pool_out, indices = 512 * F32, 128 * F32, 128 * 8
    assert t.params_bytes == t.grads_bytes == params
    # relu keeps its output (max pool reads the same tensor), pool its indices, the linear
    # layer its input (the flattened pool output); conv keeps only x and its weight.
    assert t.saved_bytes == relu_out + pool_out + indices
    rows = {r.path: r.saved_bytes for r in summary.rows}
    assert (rows["0"], rows["1"], rows["2"], rows["4"]) == (0, relu_out, indices, pool_out)
    # Peak: relu's backward. Alive: its saved output, the gradient reaching it and the one it
    # makes (both 512 elements) and the linear weight's gradient, computed first.
    assert t.peak_bytes == params + x + relu_out + 2 * relu_out + 64 * 10 * F32
    assert t.backward_transient_bytes == 2 * relu_out


def test_training_memory_grows_with_batch_but_params_do_not():
    small = cnnarch.analyze("resnet20", batch_size=2, train=True).training
    large = cnnarch.analyze("resnet20", batch_size=8, train=True).training
    assert large.params_bytes == small.params_bytes
    # Every BatchNorm also keeps its batch mean and inverse std: 2 floats per channel, whatever
    # the batch. resnet20 has 7 BNs of 16 channels, 6 of 32 and 6 of 64.
    bn_stats = 2 * F32 * (7 * 16 + 6 * 32 + 6 * 64)
    assert large.saved_bytes - bn_stats == 4 * (small.saved_bytes - bn_stats)
