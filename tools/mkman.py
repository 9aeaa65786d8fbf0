#!/usr/bin/env python3
"""Man pages from the public headers' contract comments.

Every public name a header declares (an AW_API function or object, a
`static inline aw_*` function, a function-like `#define aw_*` macro) gets
a section 3 page: NAME (the comment's first sentence), SYNOPSIS (the
header and the declaration), DESCRIPTION (the contract comment above the
declaration; one comment may cover a run of declarations with no blank
line between them), SEE ALSO (the header's other names and its concept
page). Every header gets a section 7 concept page, awith-<concept>(7),
from the comment at its top. The pages are generated, never edited, so
they cannot drift from the headers; a public name with no contract
comment is an error, so none goes undocumented.

  mkman.py --list3 | --list7 INCLUDE_DIR      names of the pages (for meson)
  mkman.py --out DIR INCLUDE_DIR               write DIR/*.3 and DIR/*.7
  mkman.py --check INCLUDE_DIR                 fail on undocumented names
"""
import os
import re
import sys

VERSION = os.environ.get('AW_VERSION', '')


def strip_comment(lines):
    """The text of a /* ... */ block, without the stars."""
    out = []
    for l in lines:
        l = l.strip()
        l = re.sub(r'^/\*+\s?', '', l)
        l = re.sub(r'\s*\*+/$', '', l)
        l = re.sub(r'^\*\s?', '', l)
        out.append(l)
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def decl_name(text):
    """The public name a declaration introduces, or None."""
    m = re.match(r'#\s*define\s+(aw_[a-z0-9_]+)\(', text)
    if m:
        return m.group(1)
    if text.startswith('#'):
        return None
    m = re.search(r'\b(aw_[a-z0-9_]+)\s*\(', text)
    if m and ('AW_API' in text or text.startswith('static inline')):
        return m.group(1)
    m = re.search(r'\b(aw_[a-z0-9_]+)\s*;\s*$', text)
    if m and 'AW_API' in text:
        return m.group(1)
    return None


def parse(path):
    """(concept comment, [(name, declaration, comment lines)])."""
    lines = open(path, encoding='utf-8').read().split('\n')
    top, items = [], []
    i, comment, n = 0, None, len(lines)
    while i < n:
        l = lines[i]
        s = l.strip()
        if s.startswith('/*'):
            block = [l]
            while '*/' not in lines[i]:
                i += 1
                block.append(lines[i])
            comment = strip_comment(block)
            if not top and not items and path.endswith('.h'):
                top = comment
                comment = None
            i += 1
            continue
        if not s:
            comment = None
            i += 1
            continue
        # a declaration: gather its continuation lines
        decl = [l]
        if s.startswith('#'):
            while decl[-1].rstrip().endswith('\\') and i + 1 < n:
                i += 1
                decl.append(lines[i])
        elif not s.startswith(('typedef', 'struct', 'enum', '}', '#')):
            # a one-line inline function ends in `}`: stop there, or the
            # next declaration (aw_checkpoint after aw_sleep_ms) is lost
            while not re.search(r'[;{}]\s*(/\*.*)?$', decl[-1]) and i + 1 < n:
                i += 1
                decl.append(lines[i])
        text = ' '.join(d.strip() for d in decl)
        name = decl_name(text)
        # a manager type object (aw_x_type) is documented with the
        # constructor macro that uses it
        if name and re.search(r'aw_cm_type_t\s+%s\s*;' % name, text):
            name = None
        if name and not name.startswith('aw__'):
            shown = decl[0].rstrip(' \\') if s.startswith('#') else \
                re.sub(r'\s*\{.*$', ';', '\n'.join(decl).strip())
            shown = re.sub(r'\bextern AW_API |\bAW_API ', '', shown)
            items.append((name, shown, comment or []))
        # a block body (inline function, struct): skip to its end
        if s.startswith(('typedef struct', 'struct', 'static inline', 'typedef enum', 'enum')) \
                and '{' in text and not text.rstrip().endswith(('};', '}')):
            depth = text.count('{') - text.count('}')
            while depth > 0 and i + 1 < n:
                i += 1
                depth += lines[i].count('{') - lines[i].count('}')
        i += 1
    return top, items


def esc(s):
    s = s.replace('\\', '\\e')
    return '\n'.join(('\\&' + l if l.startswith(('.', "'")) else l) for l in s.split('\n'))


def first_sentence(comment):
    text = re.sub(r'^awith(/\w+)?\.h:\s*', '', ' '.join(comment))
    m = re.match(r'(.+?[.:;])(\s|$)', text)
    return (m.group(1) if m else text)[:200]


def headers(incdir):
    d = os.path.join(incdir, 'awith')
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith('.h'))


def concept(path):
    return os.path.basename(path)[:-2]


def pages(incdir):
    """name -> (section, text); and the list of undocumented names."""
    out, missing = {}, []
    for h in headers(incdir):
        c = concept(h)
        top, items = parse(h)
        names = sorted({n for n, _, _ in items})
        seen = {}
        for name, decl, comment in items:
            seen.setdefault(name, []).append((decl, comment))
        for name, decls in seen.items():
            comment = next((cm for _, cm in decls if cm), [])
            if not comment and re.search(r'\b%s\b' % name, ' '.join(top)):
                comment = top  # the concept comment at the top shows how to use it
            if not comment:
                missing.append(f'{h}: {name} has no contract comment')
                continue
            syn = '\n'.join(d for d, _ in decls)
            also = [f'.BR {n} (3)' for n in names if n != name][:12]
            text = [f'.TH {name.upper()} 3 "" "awith {VERSION}" "awith manual"',
                    '.SH NAME', f'{name} \\- {esc(first_sentence(comment))}',
                    '.SH SYNOPSIS', '.nf', f'.B #include <awith/{c}.h>', '.PP',
                    esc(syn), '.fi', '.SH DESCRIPTION', '.nf', esc('\n'.join(comment)), '.fi',
                    '.SH SEE ALSO', f'.BR awith-{c} (7)' + (',' if also else '')]
            text += [a + ',' for a in also[:-1]] + also[-1:]
            out[f'{name}.3'] = '\n'.join(text) + '\n'
        body = top or [f'awith/{c}.h']
        text = [f'.TH AWITH-{c.upper()} 7 "" "awith {VERSION}" "awith manual"',
                '.SH NAME', f'awith-{c} \\- {esc(first_sentence(body))}',
                '.SH SYNOPSIS', f'.B #include <awith/{c}.h>', '.SH DESCRIPTION', '.nf',
                esc('\n'.join(body)), '.fi', '.SH FUNCTIONS']
        text += [f'.BR {n} (3)' for n in names]
        out[f'awith-{c}.7'] = '\n'.join(text) + '\n'
    return out, missing


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    mode, incdir = argv[1], argv[-1]
    out, missing = pages(incdir)
    if mode in ('--list3', '--list7'):
        ext = mode[-1]
        print('\n'.join(sorted(p for p in out if p.endswith('.' + ext))))
        return 0
    for m in missing:
        print(m, file=sys.stderr)
    if mode == '--out':
        d = argv[2]
        os.makedirs(d, exist_ok=True)
        for name, text in out.items():
            with open(os.path.join(d, name), 'w', encoding='utf-8') as f:
                f.write(text)
    elif mode == '--check':
        print(f'man: {sum(p.endswith(".3") for p in out)} function pages, '
              f'{sum(p.endswith(".7") for p in out)} concept pages, {len(missing)} undocumented')
    return 1 if missing and mode == "--check" else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
