"""One registry per concept (models, datasets, recipes, claims): a dict filled by a decorator.

An unknown name raises :class:`UnknownNameError`, which lists the known names and the closest
match, in the manner of timm's ``list_models``.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not in a registry. Subclasses KeyError so ``except KeyError`` still works."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.0)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        msg = f"unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(known) or '(none)'}."
        super().__init__(msg)
        self.message = msg

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class Registry(Generic[T]):
    """A named mapping from names to objects, filled with the :meth:`register` decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = name or obj.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._items[key] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name`` (for objects that are not decorated definitions)."""
        return self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._items)) from None

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style ``pattern`` (``'resnet*'``), sorted."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def values(self) -> list[T]:
        """The registered objects in the order they were registered."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
