"""Read the values a Go release binary was stamped with (`-ldflags -X`), without running it.

Upstream builds bin/mattermost with `-trimpath` (mattermost/mattermost
server/build/release.mk@02d2c6e9) and sets `model.BuildNumber`, `model.BuildEnterpriseReady` and
the other build facts with `-X` (server/Makefile@001849db, LDFLAGS, which has no `-s`). Under
-trimpath Go leaves -ldflags out of the build information it embeds (cmd/go: "only include
ldflags if -trimpath is not set", golang/go#52372), so `go version -m` shows neither. The
values are still in the file as the linker put them: the variable, in a data section, is a
(pointer, length) pair whose pointer leads to a copy of the value in .rodata
(cmd/link/internal/ld/data.go, `addstrdata`), and the ELF symbol table names the variable.
Release binaries keep that table: upstream links without `-s` (issue #3212: "keep the debug
information"; mattermost/mattermost PR #36181 to strip it was still open in 2026).

Everything is bounds-checked and read in chunks: the file is a release's, and not trusted. A
binary without a symbol table (stripped, or not ELF at all) yields nothing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import IO

_ELF_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_SHT_SYMTAB, _SHT_NOBITS = 2, 8
_STT_OBJECT = 1
_CHUNK = 1 << 20
# No build fact is anywhere near this long.
_MAX_VALUE = 256
_MAX_SECTIONS = 1 << 12
# The package that holds the build facts, in every era of upstream's module path.
_MODEL_PREFIX = b"github.com/mattermost/"
_MODEL_SUFFIX = b"/model."


def read_build_values(f: IO[bytes], names: tuple[str, ...]) -> dict[str, str]:
    """The string variables `<mattermost module>/model.<name>` of ELF executable `f` that the
    symbol table names; those it does not (or a file that is no such executable) are left out."""
    try:
        return _read(f, names)
    except (OSError, struct.error, ValueError):
        return {}


def _read(f: IO[bytes], names: tuple[str, ...]) -> dict[str, str]:
    size = f.seek(0, os.SEEK_END)
    header = _pread(f, 0, _ELF_HEADER.size, size)
    ident, _, _, _, _, _, shoff, _, _, _, _, shentsize, shnum, _ = _ELF_HEADER.unpack(header)
    # 64-bit little-endian ELF: what linux/amd64 and linux/arm64 builds are.
    if ident[:6] != b"\x7fELF\x02\x01" or shentsize != _SECTION.size or not 0 < shnum <= _MAX_SECTIONS:
        return {}
    table = _pread(f, shoff, shnum * _SECTION.size, size)
    sections = [_SECTION.unpack_from(table, i * _SECTION.size) for i in range(shnum)]
    symtab = next((s for s in sections if s[1] == _SHT_SYMTAB and s[9] == _SYMBOL.size), None)
    if symtab is None or symtab[6] >= shnum:
        return {}
    strtab = sections[symtab[6]]
    wanted = _name_offsets(f, strtab[4], strtab[5], size, names)
    if not wanted:
        return {}
    found: dict[str, str] = {}
    # Collected first: reading a value moves the file position the symbols are read from.
    addresses: dict[str, int] = {}
    for st_name, info, address, sym_size in _symbols(f, symtab[4], symtab[5], size):
        name = wanted.get(st_name)
        if name is not None and name not in addresses and info & 0xF == _STT_OBJECT and sym_size >= 16:
            addresses[name] = address
    for name, address in addresses.items():
        pointer, length = struct.unpack("<QQ", _read_at(f, sections, address, 16, size))
        if length > _MAX_VALUE:
            continue
        value = _read_at(f, sections, pointer, length, size)
        if value.isascii() and value.decode().isprintable():
            found[name] = value.decode()
    return found


def _pread(f: IO[bytes], offset: int, length: int, size: int) -> bytes:
    if offset < 0 or length < 0 or offset + length > size:
        raise ValueError("outside the file")
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise ValueError("short read")
    return data


def _read_at(f: IO[bytes], sections: list[tuple[int, ...]], address: int, length: int, size: int) -> bytes:
    """`length` bytes at virtual address `address`, from the section that loads it."""
    for _, kind, _, start, offset, sec_size, *_ in sections:
        if kind != _SHT_NOBITS and start <= address and address + length <= start + sec_size and start:
            return _pread(f, offset + address - start, length, size)
    raise ValueError("address in no section")


def _name_offsets(
    f: IO[bytes], offset: int, length: int, size: int, names: tuple[str, ...]
) -> dict[int, str]:
    """Where in the string table each wanted variable's name starts: name -> offset, inverted."""
    suffixes = {_MODEL_SUFFIX + n.encode() + b"\x00": n for n in names}
    found: dict[int, str] = {}
    overlap = 512  # longer than any module path plus a variable's name
    pos = 0
    carry = b""
    while pos < length:
        chunk = carry + _pread(f, offset + pos, min(_CHUNK, length - pos), size)
        base = pos - len(carry)
        for suffix, name in suffixes.items():
            at = chunk.find(suffix)
            while at != -1:
                start = chunk.rfind(b"\x00", 0, at) + 1
                if chunk.startswith(_MODEL_PREFIX, start) and (start > 0 or base == 0):
                    found.setdefault(base + start, name)
                at = chunk.find(suffix, at + 1)
        pos += min(_CHUNK, length - pos)
        carry = chunk[-overlap:]
    return found


def _symbols(f: IO[bytes], offset: int, length: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(name offset, info, value, size) of every symbol, read a chunk at a time."""
    step = (_CHUNK // _SYMBOL.size) * _SYMBOL.size
    total = (length // _SYMBOL.size) * _SYMBOL.size
    for first in range(0, total, step):
        chunk = _pread(f, offset + first, min(step, total - first), size)
        for st_name, info, _, _, value, sym_size in _SYMBOL.iter_unpack(chunk):
            yield st_name, info, value, sym_size
