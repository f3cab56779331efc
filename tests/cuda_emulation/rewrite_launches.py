"""Rewrites CUDA launches for the host emulation (tests/cuda_emulation).

    python3 rewrite_launches.py IN.cu OUT.cc

Every `kernel<<<grid, block[, shared[, stream]]>>>(args...)` becomes
`::crg_emu::Launch(grid, block, ...)(kernel, args...)`, and every static
`__shared__ T name[dims];` in a kernel becomes a reference to the current
block's copy, which the emulator allocates per block:

    static const char crg_emu_shared_name = 0;
    auto& name = ::crg_emu::internal::SharedVariable<T[dims]>(
        &crg_emu_shared_name, "name");

(the tag's address names the variable, one per template instantiation).
Nothing else changes (dynamic `extern __shared__` is refused), and a #line
directive plus kept newlines make compiler messages and sanitizer
reports point at the original file and line.
"""

import re
import sys

LAUNCH = re.compile(
    r"(?P<kernel>\b[A-Za-z_]\w*(?:\s*<[^<>;(){}]*>)?)(?P<ws>\s*)<<<(?P<config>.*?)>>>\s*\(",
    re.DOTALL,
)

SHARED = re.compile(
    r"\b__shared__\s+(?P<type>[A-Za-z_][\w:<>, ]*?)\s*\b(?P<name>[A-Za-z_]\w*)"
    r"\s*(?P<dims>(?:\[[^\]\n]*\]\s*)*);"
)


def shared(m: re.Match) -> str:
    name = m.group("name")
    dims = re.sub(r"\s+", "", m.group("dims"))
    return (
        f"static const char crg_emu_shared_{name} = 0; "
        f"auto& {name} = ::crg_emu::internal::SharedVariable<"
        f'{m.group("type").strip()}{dims}>(&crg_emu_shared_{name}, "{name}");'
    )


def rewrite(text: str) -> tuple[str, int]:
    def launch(m: re.Match) -> str:
        newlines = "\n" * m.group("ws").count("\n")
        return f"::crg_emu::Launch({m.group('config')})({m.group('kernel')},{newlines} "

    out, count = LAUNCH.subn(launch, text)
    out = SHARED.sub(shared, out)
    if "__shared__" in out:
        raise SystemExit("rewrite_launches: a __shared__ declaration was not rewritten")
    if "<<<" in out or ">>>" in out:
        raise SystemExit("rewrite_launches: a launch was not rewritten")
    return out, count


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    out, count = rewrite(text)
    if count == 0:
        raise SystemExit(f"rewrite_launches: no launch found in {src}")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{src}"\n{out}')


if __name__ == "__main__":
    main()
