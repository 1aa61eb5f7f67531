"""The flat layer: a pytree's leaves as one buffer, and which transforms may run on it.

``_tree`` holds :class:`FlatTree` / :class:`FlatLayout` (every leaf in one f32 buffer, with
the row layout that per-leaf reductions need); ``_leaf_rows`` maps per-leaf functions over
those rows; ``_capability`` is the table of transforms that may run on a flat buffer
(elementwise, or per-leaf through the rows) and of those refused, with the reason. A new
transform that is not elementwise must appear in that table (see docs/developers.md).
"""
