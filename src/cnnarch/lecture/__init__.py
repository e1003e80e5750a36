"""CS231n Lecture 9 ("CNN Architectures") as data: its facts computed, its claims checked, and
the report built from them.

One module per topic of the lecture, each a `build(...)` that returns a `Topic` (its section,
its checks, the key ideas they decide): `models`, `alexnet`, `vgg`, `googlenet` (with the
Inception module), `resnet`, `comparison`, `planner`, `degradation`, `published`, and
`definitions`; `build.build_report` puts them together and renders them with `cnnarch.report`.

Shared vocabulary: `claims` (verdicts, `Check`, the key ideas), `figures` (classes of agreement
of a published figure, `Cause`), `layers` (a network's layers as the slides count them),
`diagrams` and `explorer` (the pictures and the explorer of each model card).

Also used by `cnnarch summary MODEL --style cs231n` (`vgg.slide_table`) and `cnnarch diagram`.
"""
