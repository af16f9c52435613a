"""A small ELF64 file laid out like a Go release binary where inspection reads it.

Upstream builds bin/mattermost with `-trimpath` and stamps its version and edition with
`-ldflags -X` (server/Makefile LDFLAGS, server/build/release.mk). Under -trimpath Go leaves
-ldflags out of the binary's build information (golang/go#52372), so the values survive only as
the linker put them: each string variable in .data holds a pointer to, and the length of, a
NUL-terminated copy of the value in .rodata (cmd/link/internal/ld/data.go `addstrdata`), and the
symbol table names the variable. Release binaries keep their symbol table (no `-s`; upstream
issue #3212, PR #36181 still open). This writes just those parts, for tests of the reader.
"""

from __future__ import annotations

import struct

MODEL = "github.com/mattermost/mattermost/server/public/model"
EM_X86_64, EM_AARCH64 = 62, 183
_BASE = 0x400000
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB = 1, 2, 3
_SHF_ALLOC, _SHF_WRITE = 2, 1
_STT_OBJECT, _STB_GLOBAL = 1, 1


def go_binary(values: dict[str, str], *, machine: int = EM_X86_64, model: str = MODEL) -> bytes:
    """An executable whose `<model>.<Name>` string variables hold `values`."""
    rodata = bytearray(b"go:buildid\x00runtime error\x00")
    data = bytearray(b"\x00" * 16)
    strtab = bytearray(b"\x00")
    symbols: list[tuple[int, int, int, int]] = []  # name offset, section index, address, size
    rodata_addr, data_addr = _BASE + 0x1000, _BASE + 0x2000
    for name, value in values.items():
        at = rodata_addr + len(rodata)
        rodata += value.encode() + b"\x00"
        var = data_addr + len(data)
        data += struct.pack("<QQ", at, len(value.encode()))
        symbols.append((len(strtab), 2, var, 16))
        strtab += f"{model}.{name}".encode() + b"\x00"
        symbols.append((len(strtab), 1, at, len(value.encode()) + 1))
        strtab += f"{model}.{name}.str".encode() + b"\x00"
    symtab = bytearray(bytes(24))
    for name_off, shndx, addr, size in symbols:
        symtab += struct.pack("<IBBHQQ", name_off, (_STB_GLOBAL << 4) | _STT_OBJECT, 0, shndx, addr, size)
    shstrtab = b"\x00.rodata\x00.data\x00.symtab\x00.strtab\x00.shstrtab\x00"
    # Go's linker puts the section headers right after the ELF header; so does this.
    shoff, shnum = 64, 6
    offset = shoff + 64 * shnum
    blobs = [bytes(rodata), bytes(data), bytes(symtab), bytes(strtab), shstrtab]
    offsets = []
    for blob in blobs:
        offsets.append(offset)
        offset += len(blob)
    header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        b"\x7fELF\x02\x01\x01" + bytes(9), 2, machine, 1, rodata_addr, 0, shoff, 0, 64, 56, 0, 64, shnum, 5,
    )  # fmt: skip
    sections = [
        bytes(64),
        struct.pack(
            "<IIQQQQIIQQ", 1, _SHT_PROGBITS, _SHF_ALLOC, rodata_addr, offsets[0], len(rodata), 0, 0, 32, 0
        ),
        struct.pack(
            "<IIQQQQIIQQ",
            9,
            _SHT_PROGBITS,
            _SHF_ALLOC | _SHF_WRITE,
            data_addr,
            offsets[1],
            len(data),
            0,
            0,
            32,
            0,
        ),
        struct.pack("<IIQQQQIIQQ", 15, _SHT_SYMTAB, 0, 0, offsets[2], len(symtab), 4, 1, 8, 24),
        struct.pack("<IIQQQQIIQQ", 23, _SHT_STRTAB, 0, 0, offsets[3], len(strtab), 0, 0, 1, 0),
        struct.pack("<IIQQQQIIQQ", 31, _SHT_STRTAB, 0, 0, offsets[4], len(shstrtab), 0, 0, 1, 0),
    ]
    return header + b"".join(sections) + b"".join(blobs)
