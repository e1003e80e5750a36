"""CS231n Lecture 9 ("CNN Architectures") as data: its facts computed, its claims checked.

Computed once here, rendered by `cnnarch report` and by `cnnarch summary MODEL --style cs231n`:

- `layers`: any network's layers as the slides count them (CONV3-64, POOL2, inception (3a));
- `vgg`: the VGG16 slide's table for any network, the slide's checks, 3x3 against 7x7;
- `googlenet`: GoogLeNet's Table 1, the Inception module's arithmetic, the auxiliary heads;
- `alexnet`: the two towers and what crosses between them;
- `claims`: the one vocabulary of verdicts and the one sign convention for differences.

The comparison of architectures and the degradation experiment live in `cnnarch.experiments`.
"""
