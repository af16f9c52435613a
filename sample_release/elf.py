"""bin/mattermost of a sample release as the real one is built: a static ELF executable whose
symbol table names the build values, with the sample server appended to it.

Upstream builds bin/mattermost with `-trimpath` (mattermost/mattermost
server/build/release.mk@02d2c6e9) and stamps `model.BuildNumber`, `model.BuildEnterpriseReady`
and the other build facts with `-ldflags -X` (server/Makefile@001849db, LDFLAGS, which has no
`-s`). Under -trimpath Go leaves -ldflags out of the build information it embeds (golang/go#52372),
so the values survive only as the linker put them: each string variable in a data section holds a
pointer to, and the length of, a copy of the value in .rodata (cmd/link/internal/ld/data.go,
`addstrdata`), and the ELF symbol table names the variable. mmpkg reads them from there
(mmpkg/build/gobinary.py) and never runs an untrusted binary to learn its version; a sample whose
binary is a script would leave that reading untested.

The executable part is a few instructions (below, with their source) that run
`/usr/bin/python3 <this file> ARGS...`: Python runs a file that ends in a zip archive as the
archive's `__main__.py`, whatever precedes it, so the sample server travels as a stored
(uncompressed, so that its help texts are in the file as the real binary's are) zip member.
"""

from __future__ import annotations

import io
import struct
import zipfile

from mmpkg.mattermost.release import Arch

EM_X86_64, EM_AARCH64 = 62, 183
MACHINE = {Arch.AMD64: EM_X86_64, Arch.ARM64: EM_AARCH64}
# Go's entry point on each architecture (src/runtime/rt0_linux_*.s).
ENTRY_SYMBOL = {Arch.AMD64: "_rt0_amd64_linux", Arch.ARM64: "_rt0_arm64_linux"}

# readlink("/proc/self/exe") into a buffer on the stack; the argc slot in front of argv becomes
# python's argv[0] and argv[0] this file's real path (or, without /proc, the path it was run
# by, as in a chroot without its API file systems); execve("/usr/bin/python3", that, envp);
# exit(127) if that fails. Assembled with `as` (x86-64) and `aarch64-linux-gnu-as`
# from the source beside each, .text only; tests/test_sample_elf.py assembles them again.
STUB_SOURCE = {
    Arch.AMD64: """\
    .globl _start
_start:
    mov    %rsp, %rbx
    mov    (%rbx), %rcx
    lea    16(%rbx,%rcx,8), %r12
    sub    $4096, %rsp
    mov    $89, %eax
    lea    exe(%rip), %rdi
    mov    %rsp, %rsi
    mov    $4095, %edx
    syscall
    test   %rax, %rax
    js     keep
    movb   $0, (%rsp,%rax)
    mov    %rsp, 8(%rbx)
keep:
    lea    python(%rip), %rdi
    mov    %rdi, (%rbx)
    mov    %rbx, %rsi
    mov    %r12, %rdx
    mov    $59, %eax
    syscall
fail:
    mov    $127, %edi
    mov    $60, %eax
    syscall
exe:    .asciz "/proc/self/exe"
python: .asciz "/usr/bin/python3"
""",
    Arch.ARM64: """\
    .globl _start
_start:
    mov  x19, sp
    ldr  x1, [x19]
    add  x20, x19, x1, lsl #3
    add  x20, x20, #16
    sub  sp, sp, #4096
    mov  x0, #-100
    adr  x1, exe
    mov  x2, sp
    mov  x3, #4095
    mov  x8, #78
    svc  #0
    tbnz x0, #63, keep
    mov  x9, sp
    strb wzr, [x9, x0]
    str  x9, [x19, #8]
keep:
    adr  x0, python
    str  x0, [x19]
    mov  x1, x19
    mov  x2, x20
    mov  x8, #221
    svc  #0
fail:
    mov  x0, #127
    mov  x8, #93
    svc  #0
exe:    .asciz "/proc/self/exe"
python: .asciz "/usr/bin/python3"
""",
}
STUB = {
    Arch.AMD64: bytes.fromhex(
        "4889e3488b0b4c8d64cb104881ec00100000b859000000488d3d3a0000004889e6baff0f00000f05"
        "4885c07808c604040048896308488d3d2b00000048893b4889de4c89e2b83b0000000f05bf7f0000"
        "00b83c0000000f052f70726f632f73656c662f657865002f7573722f62696e2f707974686f6e3300"
    ),
    Arch.ARM64: bytes.fromhex(
        "f3030091610240f9740e018b94420091ff0740d1600c809241020010e2030091e3ff81d2c80980d2"
        "010000d48000f8b7e90300913f692038690600f980010070600200f9e10313aae20314aaa81b80d2"
        "010000d4e00f80d2a80b80d2010000d42f70726f632f73656c662f657865002f7573722f62696e2f"
        "707974686f6e3300"
    ),
}

_BASE = 0x400000
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_PT_LOAD, _PT_GNU_STACK, _PF_X, _PF_W, _PF_R = 1, 0x6474E551, 1, 2, 4
_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB = 1, 2, 3
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 1, 2, 4
_STT_OBJECT, _STT_FUNC, _STB_GLOBAL = 1, 2, 1
# Section indices, in the order written below.
_TEXT, _RODATA, _DATA = 1, 2, 3


def _align(blob: bytearray, to: int) -> None:
    blob += bytes(-len(blob) % to)


def go_binary(
    values: dict[str, str], model: str, arch: Arch, main: bytes, *, date_time: tuple[int, ...]
) -> bytes:
    """The executable: `<model>.<Name>` string variables holding `values`, and `main` (the
    sample server's source) as the `__main__.py` of the zip archive that ends the file."""
    # One PT_LOAD maps the whole ELF part at _BASE, so an address is _BASE + its file offset.
    image = bytearray(_EHDR.size + 2 * _PHDR.size)
    _align(image, 16)
    text_at = len(image)
    image += STUB[arch]
    _align(image, 32)
    rodata_at = len(image)
    rodata = bytearray(b"go:buildid\x00runtime error: index out of range\x00")
    for value in values.values():
        rodata += value.encode() + b"\x00"
    image += rodata
    _align(image, 32)
    data_at = len(image)
    strtab = bytearray(b"\x00")
    symbols = [(len(strtab), _STT_FUNC, _TEXT, _BASE + text_at, len(STUB[arch]))]
    strtab += ENTRY_SYMBOL[arch].encode() + b"\x00"
    offset = rodata_at + len(b"go:buildid\x00runtime error: index out of range\x00")
    for name, value in values.items():
        raw = value.encode()
        var = _BASE + len(image)
        image += struct.pack("<QQ", _BASE + offset, len(raw))
        symbols.append((len(strtab), _STT_OBJECT, _DATA, var, 16))
        strtab += f"{model}.{name}".encode() + b"\x00"
        symbols.append((len(strtab), _STT_OBJECT, _RODATA, _BASE + offset, len(raw) + 1))
        strtab += f"{model}.{name}.str".encode() + b"\x00"
        offset += len(raw) + 1
    data_size = len(image) - data_at
    loaded = len(image)
    _align(image, 8)
    symtab_at = len(image)
    image += bytes(_SYM.size)
    for name_off, kind, shndx, addr, size in symbols:
        image += _SYM.pack(name_off, (_STB_GLOBAL << 4) | kind, 0, shndx, addr, size)
    strtab_at = len(image)
    image += strtab
    shstrtab = b"\x00.text\x00.rodata\x00.data\x00.symtab\x00.strtab\x00.shstrtab\x00"
    shstrtab_at = len(image)
    image += shstrtab
    _align(image, 8)
    shoff = len(image)
    sections = [
        bytes(_SHDR.size),
        _SHDR.pack(
            1,
            _SHT_PROGBITS,
            _SHF_ALLOC | _SHF_EXECINSTR,
            _BASE + text_at,
            text_at,
            len(STUB[arch]),
            0,
            0,
            16,
            0,
        ),
        _SHDR.pack(7, _SHT_PROGBITS, _SHF_ALLOC, _BASE + rodata_at, rodata_at, len(rodata), 0, 0, 32, 0),
        _SHDR.pack(
            15, _SHT_PROGBITS, _SHF_ALLOC | _SHF_WRITE, _BASE + data_at, data_at, data_size, 0, 0, 32, 0
        ),
        _SHDR.pack(21, _SHT_SYMTAB, 0, 0, symtab_at, strtab_at - symtab_at, 5, 1, 8, _SYM.size),
        _SHDR.pack(29, _SHT_STRTAB, 0, 0, strtab_at, len(strtab), 0, 0, 1, 0),
        _SHDR.pack(37, _SHT_STRTAB, 0, 0, shstrtab_at, len(shstrtab), 0, 0, 1, 0),
    ]
    image += b"".join(sections)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)  # 64-bit, little-endian, System V
    image[: _EHDR.size] = _EHDR.pack(
        ident, 2, MACHINE[arch], 1, _BASE + text_at, _EHDR.size, shoff, 0,
        _EHDR.size, _PHDR.size, 2, _SHDR.size, len(sections), 6,
    )  # fmt: skip
    # A non-executable stack, as Go's linker asks for on Linux (cmd/link/internal/ld/elf.go).
    image[_EHDR.size : _EHDR.size + 2 * _PHDR.size] = _PHDR.pack(
        _PT_LOAD, _PF_R | _PF_X, 0, _BASE, _BASE, loaded, loaded, 0x1000
    ) + _PHDR.pack(_PT_GNU_STACK, _PF_R | _PF_W, 0, 0, 0, 0, 0, 8)
    return bytes(image) + _zip(main, date_time)


def _zip(main: bytes, date_time: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        member = zipfile.ZipInfo("__main__.py", date_time=date_time[:6])  # type: ignore[arg-type]
        member.external_attr = 0o644 << 16
        archive.writestr(member, main)
    return out.getvalue()
