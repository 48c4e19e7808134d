from collections.abc import Callable, Set

def split_lines(raw: bytes) -> tuple[list[str], list[str], dict[str, str]] | None: ...
def scrub(
    index: dict[str, str],  # a dict (no other mapping)
    hash: Callable[[str], str],
    mask: Callable[[str], str],
    free_text: Set[str],
    /,
) -> dict[str, str]: ...
def copy_binary(rows: list[tuple[object, ...]], kinds: bytes, /) -> bytes: ...
