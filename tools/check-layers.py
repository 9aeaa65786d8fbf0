#!/usr/bin/env python3
"""The layering rule, checked: no file of a lower layer includes or calls
anything of a higher one (docs/design.md, "Layers").

Two checks, both needed: includes show what a file may use, symbols show
what it does use (an inline function in a header can call up).
  1. includes: every `#include "../<layer>/..."` and every public header
     `<awith/x.h>` a source or private header names, mapped to a layer;
  2. symbols: every aw_/aw__ symbol an object file of the library leaves
     undefined, mapped to the layer of the object that defines it (nm).
Usage: tools/check-layers.py <builddir>   (exit 1 on any violation)
"""
import os
import re
import subprocess
import sys

# Rank of each layer. Layers of the same rank may not use each other.
RANK = {'coro': 0, 'loop': 1, 'core': 2, 'sync': 3, 'cm': 4,
        'net': 5, 'fs': 5, 'db': 6, 'http': 6}
# Which layer each public header belongs to. awith.h (the umbrella) is
# for users: the library's own files include what they use.
HEADER = {
    'base': 'coro', 'version': 'coro', 'loop': 'loop', 'err': 'core', 'cm': 'core', 'scope': 'core',
    'task': 'core', 'group': 'core', 'gather': 'core', 'with': 'core', 'trace': 'core',
    'thread': 'core', 'fd': 'core', 'track': 'core', 'loops': 'core', 'log': 'core',
    'signal': 'core', 'alloc': 'core',
    'lock': 'sync', 'sem': 'sync', 'event': 'sync', 'cond': 'sync', 'pool': 'sync',
    'gencm': 'cm', 'gen': 'cm', 'exitstack': 'cm', 'timing': 'cm', 'introspect': 'cm',
    'testing': 'cm',
    'stream': 'net', 'listener': 'net', 'tcp': 'net', 'unix': 'net', 'server': 'net',
    'reuseport': 'net', 'process': 'net',
    'tls': 'net', 'file': 'fs', 'pg': 'db', 'sqlite': 'db', 'http': 'http',
}


def above(user, used):
    """True when `user` may not use `used`."""
    return used != user and RANK[used] >= RANK[user]


def check_includes(root):
    bad = []
    src = os.path.join(root, 'src')
    for layer in sorted(os.listdir(src)):
        d = os.path.join(src, layer)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not f.endswith(('.c', '.h')):
                continue
            path = os.path.join(d, f)
            for n, line in enumerate(open(path, encoding='utf-8'), 1):
                m = re.match(r'\s*#\s*include\s+"\.\./(\w+)/', line)
                used = m and m.group(1)
                m = re.match(r'\s*#\s*include\s+<awith(/(\w+))?\.h>', line)
                if m:
                    used = HEADER.get(m.group(2)) if m.group(2) else 'umbrella'
                    if used is None:
                        bad.append(f'{path}:{n}: unknown public header {line.strip()}')
                        continue
                if not used:
                    continue
                if used == 'umbrella':
                    bad.append(f'{path}:{n}: includes <awith.h> (every layer): include what it uses')
                elif above(layer, used):
                    bad.append(f'{path}:{n}: {layer}/ includes {used}/ ({line.strip()})')
    return bad


def nm(obj, flags):
    out = subprocess.run(['nm', flags, obj], capture_output=True, text=True, check=True).stdout
    return out.split('\n')


def check_symbols(builddir):
    objdir = next((os.path.join(builddir, d) for d in os.listdir(builddir)
                   if d.startswith('libawith.so') and d.endswith('.p')), None)
    if not objdir:
        return [f'{builddir}: no libawith.so*.p object directory (build first)']
    layer_of, defs, undefs = {}, {}, {}
    for o in os.listdir(objdir):
        m = re.match(r'src_(\w+?)_.*\.o$', o)
        if not m or m.group(1) not in RANK:
            continue
        layer_of[o] = m.group(1)
        for line in nm(os.path.join(objdir, o), '--defined-only'):
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBRVW' and p[2].startswith('aw_'):
                defs[p[2]] = o
        undefs[o] = [l.split()[-1] for l in nm(os.path.join(objdir, o), '--undefined-only')
                     if l.split() and l.split()[-1].startswith('aw_')]
    bad = []
    for o, syms in sorted(undefs.items()):
        for s in syms:
            d = defs.get(s)
            if d and above(layer_of[o], layer_of[d]):
                bad.append(f'{o}: {layer_of[o]}/ calls {s} of {layer_of[d]}/ ({d})')
    return bad


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    builddir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, 'build')
    bad = check_includes(root) + check_symbols(builddir)
    for b in bad:
        print(b)
    print(f'layers: {len(bad)} violation(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
