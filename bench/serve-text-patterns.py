#!/usr/bin/env python3
"""serve-text-patterns.py NAMES PATTERNS MEMBERS ARCHIVE...: bench/serve-text-order.sh's
names (callgrind's mangled function names, one a line) to linker-script patterns.

PATTERNS gets two section patterns a Rust (or otherwise one-section-per-function) name:
`.text.<name>` and `.text.unlikely.<name>` (LLVM's section for a `#[cold]` function), the
legacy mangling's hash (`17h<16 hex>E`, and any `.llvm.<n>` after it) and an LLVM `.<n>`
suffix of a v0 name replaced by `*`. MEMBERS gets `*<archive>:<member>` for a name an
ARCHIVE's member defines (glibc, libm, libgcc and ring's C and assembly objects, which are
not built one section per function); ring's members lose their build-hash prefix, and a
glibc member with CPU variants (`memmove-avx-unaligned-erms.o`) stands for all of them.
"""
import re
import subprocess
import sys


def main() -> None:
    names_file, patterns_file, members_file = sys.argv[1:4]
    member_of = {}
    for archive in sys.argv[4:]:
        out = subprocess.run(["nm", "-A", "--defined-only", archive],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            fields = line.split()
            if len(fields) != 3 or fields[1] not in "TtWi" or ":" not in fields[0]:
                continue
            # `<archive path>:<member>:<address> <type> <name>`
            lib, member = fields[0].split(":")[-3:-1]
            lib = lib.rsplit("/", 1)[-1]
            if lib.startswith("libring_core"):
                # ring's objects reach the linker inside its rlib, named <hash>-<source>.o
                pattern = "*-" + re.sub(r"^[0-9a-f]{16}-", "", member)
            elif "-" in member:
                # glibc's and libm's CPU-specific variants (memmove-avx-unaligned-erms.o,
                # strlen-evex.o, e_pow-fma.o): the ifunc picks one per CPU, and valgrind's
                # CPU is not the node's, so every variant of the family goes
                pattern = f"*{lib}:{member.split('-')[0]}-*.o"
            else:
                pattern = f"*{lib}:{member}"
            member_of.setdefault(fields[2], pattern)
    patterns, members = set(), set()
    with open(names_file, encoding="utf-8") as f:
        names = f.read().split("\n")
    for name in names:
        if not name or name.startswith(("0x", "(")) or " " in name or "'" in name:
            continue  # valgrind's own names and unnamed addresses
        if name.startswith("_ZN"):
            patterns.add(re.sub(r"17h[0-9a-f]{16}E(\..*)?$", "17h*", name))
        elif name.startswith("_R"):
            patterns.add(re.sub(r"\.[0-9]+$", "*", name))
        elif name in member_of:
            members.add(member_of[name])
        else:
            patterns.add(name)
    with open(patterns_file, "w", encoding="utf-8") as f:
        for p in sorted(patterns):
            f.write(f".text.{p}\n.text.unlikely.{p}\n")
    with open(members_file, "w", encoding="utf-8") as f:
        for m in sorted(members):
            f.write(f"{m}\n")


if __name__ == "__main__":
    main()
