"""The seen/unseen class split: which classes DeViSE trains on and which it meets zero-shot.

One home for the rule both layers use: ImageExampleGen (the TFX layer) records the
split it chose in the Examples' class_split.json, and the benchmarks choose the same
split without TFX. The choice depends only on the class names and a seed (a stable
hash, the same on every machine and Python run), never on listing order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from devise_keras.config import DataConfig

MAX_NAMES_IN_MESSAGE = 20


class ClassSplitError(ValueError):
    """A class split cannot be chosen from the given classes, or a recorded one is invalid."""


def stable_hash(seed: int, salt: str, text: str) -> int:
    """A 64-bit hash of `text` that is the same on every machine and Python run.

    The salt keeps independent choices independent: ImageExampleGen hashes an image
    path with salt "split" for train/eval and "cap" for the per-class cap (with one
    hash, keeping the smallest hashes would also keep the images bound for eval), and
    a class name with "unseen" for the class split.

    Args:
        seed: the split seed (`DataConfig.split_seed`).
        salt: names the choice the hash serves.
        text: what is hashed (an image path, a class name).

    Example:
    >>> hex(stable_hash(0, "split", "cat/0.png"))
    '0x93e73549f45894d0'
    """
    digest = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def num_unseen_classes(
    num_classes: int,
    num_unseen: int = DataConfig.num_unseen,
    unseen_fraction: float = DataConfig.unseen_fraction,
) -> int:
    """How many classes to hold out: `unseen_fraction` of them when > 0, else `num_unseen`.

    A fraction is rounded (half to even) and gives at least one class.

    Args:
        num_classes: how many classes there are.
        num_unseen: the count used when `unseen_fraction` is 0 (`DataConfig.num_unseen`).
        unseen_fraction: in [0, 1) (`DataConfig.unseen_fraction`).

    Example:
    >>> num_unseen_classes(831, 2, 0.2), num_unseen_classes(10, 2, 0.0)
    (166, 2)
    """
    if unseen_fraction <= 0:
        return num_unseen
    if unseen_fraction >= 1:
        raise ClassSplitError(f"unseen_fraction must be in [0, 1), got {unseen_fraction}")
    return max(1, int(round(unseen_fraction * num_classes)))


def choose_class_split(
    classes: Iterable[str],
    unseen_classes: Iterable[str] | None = None,
    num_unseen: int = DataConfig.num_unseen,
    split_seed: int = DataConfig.split_seed,
    marked_unseen: Iterable[str] = frozenset(),
    marked_seen: Iterable[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """Returns (seen, unseen), both sorted.

    An explicit `unseen_classes` list (plus the classes a manifest marks "unseen") wins;
    otherwise the `num_unseen` classes with the smallest `stable_hash(split_seed,
    "unseen", name)` are unseen, which is deterministic and independent of order.

    Args:
        classes: every class name.
        unseen_classes: names to hold out (`DataConfig.unseen_classes`); each must be
            one of `classes`.
        num_unseen: how many classes to hold out when no class is named (see
            `num_unseen_classes` for `DataConfig.unseen_fraction`).
        split_seed: seed of the hash (`DataConfig.split_seed`).
        marked_unseen: classes that a manifest puts in the unseen split.
        marked_seen: classes with manifest rows in train/eval; none may be unseen.

    Raises:
        ClassSplitError: an unknown name, a count out of range, a class both unseen and
            marked seen, or no seen class left.

    Example:
    >>> choose_class_split(["fish", "cat", "dog"], ["dog"])
    (['cat', 'fish'], ['dog'])
    >>> choose_class_split(["a", "b", "c", "d"], num_unseen=1, split_seed=0)
    (['a', 'b', 'd'], ['c'])
    """
    classes = list(classes)
    named = set(unseen_classes or [])
    known = set(classes)
    unknown = sorted(named - known)
    if unknown:
        raise ClassSplitError(
            f"unseen_classes names unknown class(es) {unknown}; known classes: "
            f"{short_name_list(sorted(known))}"
        )
    marked_unseen = set(marked_unseen)
    if named or marked_unseen:
        unseen = named | marked_unseen
    else:
        if num_unseen < 0 or num_unseen >= len(classes):
            raise ClassSplitError(
                f"num_unseen={num_unseen} must be in [0, {len(classes) - 1}]: "
                f"{len(classes)} classes, and at least one must stay seen"
            )
        ranked = sorted(classes, key=lambda c: (stable_hash(split_seed, "unseen", c), c))
        unseen = set(ranked[:num_unseen])
    conflict = sorted(unseen & set(marked_seen))
    if conflict:
        raise ClassSplitError(
            f"class(es) {conflict} are unseen but manifest rows put their images in "
            "train/eval; drop those split values or the class from unseen_classes"
        )
    seen = sorted(known - unseen)
    if not seen:
        raise ClassSplitError("every class is unseen; at least one class must be seen")
    return seen, sorted(unseen)


def short_name_list(names: list[str], limit: int = MAX_NAMES_IN_MESSAGE) -> str:
    """`names` for an error message: the first `limit` of them and how many more.

    Args:
        names: the names, in the order to show.
        limit: how many to show at most.

    Example:
    >>> short_name_list(["a", "b", "c"], limit=2)
    "['a', 'b'] and 1 more"
    """
    if len(names) <= limit:
        return str(names)
    return f"{names[:limit]} and {len(names) - limit} more"
