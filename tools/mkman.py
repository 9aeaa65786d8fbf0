#!/usr/bin/env python3
"""Man pages from the public headers' contract comments.

Every public name a header declares (an AW_API function or object, a
`static inline aw_*` function, a function-like `#define aw_*` macro) gets
a section 3 page: NAME (the comment's first sentence), SYNOPSIS (the
header and the declaration), DESCRIPTION (the contract comment above the
declaration; one comment may cover a run of declarations with no blank
line between them), SEE ALSO (the header's other names and its concept
page). Every header gets a section 7 concept page, awith-<concept>(7),
from the comment at its top; every page of docs/ (docs/<name>.md, beside
INCLUDE_DIR) becomes awith-<name>(7) too, converted from its Markdown,
and where a header has the same name the two are one page (the doc, then
the header's comment and its functions). A doc page's SEE ALSO lists the
function pages of every public name it mentions, and --check fails on a
name it mentions that does not exist (a page that drifted from the code)
or a contract id it cites that docs/semantics.md does not define. The
pages are generated, never edited, so
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
    public = {p[:-2] for p in out if p.endswith('.3')}
    docs, bad = doc_pages(incdir, public)
    missing += bad
    for name, (title, body, used) in docs.items():
        key = f'awith-{name}.7'
        head = [f'.TH AWITH-{name.upper()} 7 "" "awith {VERSION}" "awith manual"',
                '.SH NAME', f'awith-{name} \\- {esc(title)}', '.SH DESCRIPTION']
        if key in out:
            # the header's page follows the doc: its comment and functions
            hdr = out[key].split('\n.SH DESCRIPTION\n', 1)[1]
            body = body + ['.SH THE HEADER', f'.B #include <awith/{name}.h>'] + \
                hdr.rstrip('\n').split('\n')
        also = [f'.BR {n} (3)' for n in used]
        tail = ['.SH SEE ALSO'] + [a + ',' for a in also[:-1]] + also[-1:] if also else []
        out[key] = '\n'.join(head + body + tail) + '\n'
    return out, missing


def inline(text):
    """Markdown inline markup to roff: `code` bold, **x** bold, *x* italic."""
    text = esc(text)
    text = re.sub(r'`([^`]+)`', r'\\fB\1\\fR', text)
    text = re.sub(r'\*\*([^*]+)\*\*', r'\\fB\1\\fR', text)
    text = re.sub(r'(?<![\w*])\*([^*\s][^*]*)\*(?!\w)', r'\\fI\1\\fR', text)
    text = re.sub(r'\[([^\]]+)\]\([^)]+\)', r'\1', text)
    return text


def md_to_roff(lines):
    """The body of a Markdown page as roff (headings, paragraphs, lists,
    code blocks, tables kept as preformatted text)."""
    out, i = [], 0
    while i < len(lines):
        l = lines[i]
        if l.startswith('```'):
            out += ['.PP', '.nf', '.RS 4']
            i += 1
            while i < len(lines) and not lines[i].startswith('```'):
                out.append(esc(lines[i]) if lines[i] else '')
                i += 1
            out += ['.RE', '.fi']
        elif l.startswith('<!--'):
            while '-->' not in lines[i]:
                i += 1
        elif l.startswith('## ') or l.startswith('### '):
            out.append(('.SH ' if l.startswith('## ') else '.SS ') + esc(l.lstrip('#').strip().upper()
                                                                       if l.startswith('## ') else l.lstrip('#').strip()))
        elif l.startswith('|'):
            out += ['.PP', '.nf']
            while i < len(lines) and lines[i].startswith('|'):
                if not re.match(r'^\|[-| :]+\|$', lines[i]):
                    out.append(inline(lines[i]))
                i += 1
            out.append('.fi')
            continue
        elif re.match(r'^\s*([-*]|\d+\.) ', l):
            m = re.match(r'^\s*([-*]|\d+\.) (.*)', l)
            item = [m.group(2)]
            while i + 1 < len(lines) and lines[i + 1].startswith('  ') and lines[i + 1].strip():
                i += 1
                item.append(lines[i].strip())
            out += ['.IP \\(bu 2' if m.group(1) in '-*' else f'.IP {m.group(1)} 4',
                    inline(' '.join(item))]
        elif l.strip():
            para = [l.strip()]
            while i + 1 < len(lines) and lines[i + 1].strip() and not re.match(
                    r'^(```|#|\||<!--|\s*([-*]|\d+\.) )', lines[i + 1]):
                i += 1
                para.append(lines[i].strip())
            out += ['.PP', inline(' '.join(para))]
        i += 1
    return out


def doc_pages(incdir, names):
    """docs/*.md: name -> (title, roff body, public names mentioned), and
    the problems --check reports."""
    d = os.path.join(incdir, os.pardir, 'docs')
    if not os.path.isdir(d):
        return {}, []
    ids = set()
    sem = os.path.join(d, 'semantics.md')
    if os.path.exists(sem):
        for l in open(sem, encoding='utf-8'):
            m = re.match(r'^- ([A-N]\d+)\.', l)
            if m:
                ids.add(m.group(1))
    out, bad = {}, []
    for f in sorted(os.listdir(d)):
        if not f.endswith('.md'):
            continue
        lines = open(os.path.join(d, f), encoding='utf-8').read().split('\n')
        title = lines[0].lstrip('#').strip() if lines and lines[0].startswith('#') else f[:-3]
        text = '\n'.join(lines)
        used = sorted({n for n in re.findall(r'\b(aw_[a-z0-9_]+)\s*\(', text)
                       if not n.startswith('aw__')})
        for n in used:
            if n not in names:
                bad.append(f'docs/{f}: mentions {n}(), which no header declares')
        if f != 'semantics.md' and ids:
            for m in re.finditer(r'SEMANTICS ((?:[A-N]\d+(?:,\s*)?)+)', text):
                for ident in re.findall(r'[A-N]\d+', m.group(1)):
                    if ident not in ids:
                        bad.append(f'docs/{f}: cites SEMANTICS {ident}, not in docs/semantics.md')
        out[f[:-3]] = (title, md_to_roff(lines[1:]), [n for n in used if n in names])
    return out, bad


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
