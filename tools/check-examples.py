#!/usr/bin/env python3
"""Compile every example of the headers and docs against the built library.

An example in a header is an indented run of lines in a comment (three
spaces or more after the comment's star) that reads as C: its first line
starts like a statement or a definition, and every line ends as C does
(`;`, `{`, `}`, `)`, `,`, a `// comment`, or `...`). Tables and
indented prose fail that test and are left alone. In README.md and
docs/*.md an example is a ```c fenced block.

Each example becomes one translation unit: <awith.h> (and the headers it
leaves out), the names the example takes as given (GIVEN below: the
program around it that the comment does not show, like rustdoc's hidden
lines), its definitions at file scope (a `static` function or variable, a
`typedef`, a `#define`), its statements in a function body. `...` means
"code not shown": alone or as a statement it becomes an empty statement,
and a line that starts with it is a comment. All the examples of one
comment share a unit, so one may use what another defines. The unit is
compiled with -Werror and linked against the library, so a name that does
not exist, a wrong argument type or a symbol the library does not export
fails it. Examples are not run.

A doc block that is an excerpt of a file (the tutorial quotes the example
programs, which their own tests build and run) or not meant to build on
its own, a fragment whose names the text around it defines, is marked
just above the fence: <!-- example: fragment (why) -->. A block that fails
to build and is not marked passes only as an excerpt of the example
programs: every line of it must then be found in examples/ (which their
own tests build and run), so a quoted line that drifts fails. A doc block
may take names as given as a header's do: <!-- example: given DECLS -->. A block whose layer this build lacks
(awith/config.h) is skipped.

  check-examples.py BUILDDIR [-v]     exit 1 if any example fails
"""
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What each header's examples take as given: the surrounding program.
GIVEN = {
    'alloc.h': 'static int run(void *arg) { return 0; }\n'
               'static void *my_malloc(size_t n) { return malloc(n); }\n'
               'static void *my_realloc(void *p, size_t n) { return realloc(p, n); }\n'
               'static void *my_calloc(size_t n, size_t s) { return calloc(n, s); }\n'
               'static void my_free(void *p) { free(p); }\n',
    'with.h': 'typedef struct { int fd; } db_t;\n'
              'static int db_enter(void *self, void **out) { *out = self; return 0; }\n'
              'static const aw_cm_type_t db_type = {"db", db_enter, NULL};\n'
              'static db_t state;\nstatic aw_lock_t m = AW_LOCK_INIT("m");\n',
    'cm.h': 'typedef struct { const char *host; } my_conn_t;\n'
            'static const aw_cm_type_t my_conn_type = {"my_conn", NULL, NULL};\n'
            'static aw_exitstack_t *st; static int i, n; static const char *p[4];\n'
            'static aw_file_t *f[4];\n',
    'thread.h': 'typedef struct { const char *path; int err; } hash_job_t;\n'
                'static void hash_file(void *arg) { (void)arg; }\nstatic hash_job_t job;\n',
    'cond.h': 'static aw_lock_t lock = AW_LOCK_INIT("lock");\n'
              'static aw_cond_t cond = AW_COND_INIT(&lock);\nstatic bool ready;\n',
    'err.h': 'static int try_step(void) { return 0; }\n',
    'exitstack.h': 'typedef struct { int fd; } conn_t;\nstatic conn_t conns[4]; static int n = 4, i;\n'
                   'static const aw_cm_type_t conn_type = {"conn", NULL, NULL};\n'
                   'static int log_done(void *arg) { return 0; }\n'
                   'static aw_exitstack_t *st; static const char *path[4]; static aw_file_t *f[4];\n',
    'file.h': 'static const char json[] = "{}"; static size_t len = 2;\n',
    'gather.h': '#define N 3\nstatic int fetch(void *arg, void **value) { return 0; }\n'
                'static int parse(void *arg, void **value) { return 0; }\nstatic char buf[16];\n'
                'static void use(void *a, void *b, void *c) { }\n'
                'static char *urls[N] = {"a", "b", "c"};\n',
    'gen.h': 'static void cleanup(void) { }\n',
    'gencm.h': 'typedef struct { int x; } res_t;\nstatic res_t the_res;\n'
               'static res_t *acquire(void *arg) { return &the_res; }\n'
               'static void release(res_t *r) { }\n',
    'group.h': 'static int worker(void *arg) { return 0; }\n',
    'http.h': 'static aw_http_response_t *r; static FILE *f; static aw_http_session_t *s;\n'
              'static const char *urls[2] = {"/a", "/b"}; static size_t n = 2;\n',
    'loop.h': 'static int main_fn(void *arg) { return 0; }\nstatic void fn(void *arg) { }\n',
    'loops.h': 'static int handle(aw_stream_t *s, void *arg) { return 0; }\n'
               'static aw_reuseport_t rp;\n',
    'pg.h': 'static aw_pg_t *db;\n',
    'pool.h': 'static const char *dsn = "postgresql:///db";\n'
              'typedef struct { int fd; } conn_t; static aw_pool_t *pool;\n',
    'reuseport.h': 'static int handle(aw_stream_t *s, void *arg) { return 0; }\n'
                   'static int serve(void *arg, int index);\nstatic int n = 2;\n',
    'server.h': '',
    'signal.h': '#include <awith/signal.h>\nstatic void reload_config(void) { }\n',
    'sqlite.h': 'static aw_sqlite_t *db;\n',
    'stream.h': 'static const char req[] = "GET / HTTP/1.0\\r\\n\\r\\n"; static size_t len = sizeof req - 1;\n',
    'tcp.h': 'static int handle(aw_stream_t *s, void *arg) { return 0; }\n',
    'testing.h': '#include <assert.h>\ntypedef struct { int fd; } conn_t;\n'
                 'static int conn_enter(void *self, void **out) { *out = self; return 0; }\n'
                 'static const aw_cm_type_t my_conn_type = {"conn", conn_enter, NULL};\n'
                 '#define my_conn(arg) aw_cm_temp(&my_conn_type, (conn_t){0})\n'
                 'static aw_lock_t my_lock = AW_LOCK_INIT("my_lock");\n',
    'trace.h': 'static int my_state;\n',
    'track.h': 'static int open_it(const char *h, int p) { return -1; }\n'
               'static const char *host = "h"; static int port = 1;\n',
}

# Headers of a layer a build may leave out: (config macro, header).
LAYER = {'tls.h': 'AW_HAVE_TLS', 'pg.h': 'AW_HAVE_PG', 'sqlite.h': 'AW_HAVE_SQLITE',
         'http.h': 'AW_HAVE_HTTP', 'pool.h': 'AW_HAVE_PG'}

PRELUDE = '''#include <awith.h>
#include <awith/alloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
'''

STARTS = re.compile(r'(aw_|AW_|static\b|typedef\b|for\b|if\b|while\b|char\b|const\b|int\b|'
                    r'long\b|unsigned\b|size_t\b|ssize_t\b|sigset_t\b|uint\d+_t\b|#\s*define\b|'
                    r'struct\b|return\b|\.\.\.|[a-z_]+->)')
ENDS = re.compile(r'([;{}),\\]|\.\.\.)$')


def code_only(line):
    """The line without a // comment (not inside a string)."""
    out, q = [], None
    i = 0
    while i < len(line):
        c = line[i]
        if q:
            out.append(c)
            if c == '\\' and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
            elif c == q:
                q = None
        elif c in '"\'':
            q = c
            out.append(c)
        elif line.startswith('//', i) or line.startswith('/*', i):
            break
        else:
            out.append(c)
        i += 1
    return ''.join(out).rstrip()


def is_code(lines):
    first = lines[0].strip()
    if not STARTS.match(first):
        return False
    for l in lines:
        c = code_only(l).strip()
        if c and not ENDS.search(c) and not c.startswith('#'):
            return False
    return True


def header_examples(path):
    """[(line, [example lines])] per comment: the runs that read as C."""
    text = open(path, encoding='utf-8').read().split('\n')
    out = []
    i = 0
    while i < len(text):
        if not text[i].lstrip().startswith('/*'):
            i += 1
            continue
        start, body = i, []
        while True:
            l = text[i]
            l = re.sub(r'^\s*/\*+', '', l) if i == start else re.sub(r'^\s*\*(?!/)', '', l, count=1)
            end = '*/' in l
            body.append((i + 1, l.split('*/')[0]))
            if end or i + 1 >= len(text):
                break
            i += 1
        i += 1
        runs, run = [], []
        for n, l in body:
            if re.match(r'\s{3,}\S', l):
                run.append((n, l))
            else:
                if run:
                    runs.append(run)
                run = []
        if run:
            runs.append(run)
        indent = None
        blocks = []
        for r in runs:
            ind = min(len(l) - len(l.lstrip()) for _, l in r)
            lines = [l[ind:] for _, l in r]
            if is_code(lines):
                blocks.append((r[0][0], lines))
        if blocks:
            out.append(blocks)
    return out


def dots(line):
    """`...` outside strings: an empty statement, or a comment."""
    c = line.strip()
    if c.startswith('...'):
        return '/* ' + c.replace('*/', '') + ' */'
    res, q, i = [], None, 0
    while i < len(line):
        ch = line[i]
        if q:
            res.append(ch)
            if ch == q:
                q = None
        elif ch in '"\'':
            q = ch
            res.append(ch)
        elif line.startswith('...', i):
            res.append(';')
            i += 3
            continue
        else:
            res.append(ch)
        i += 1
    return ''.join(res)


DEF = re.compile(r'(static\b|typedef\b|#\s*define\b|struct\s+\w+\s*\{|'
                 r'[A-Za-z_][\w \*]*\s\**[A-Za-z_]\w*\([^;]*\)\s*\{)')


def split(lines):
    """(file-scope definitions, body statements)."""
    top, body = [], []
    i = 0
    while i < len(lines):
        l = lines[i]
        if DEF.match(l) and not l.startswith((' ', '\t')):
            item = [l]
            if l.lstrip().startswith('#'):
                while item[-1].rstrip().endswith('\\') and i + 1 < len(lines):
                    i += 1
                    item.append(lines[i])
            else:
                depth = code_only(l).count('{') - code_only(l).count('}')
                while (depth > 0 or not code_only(item[-1]).rstrip().endswith((';', '}'))) \
                        and i + 1 < len(lines):
                    i += 1
                    item.append(lines[i])
                    depth += code_only(lines[i]).count('{') - code_only(lines[i]).count('}')
            top += item
        else:
            body.append(l)
        i += 1
    return top, body


def unit(given, blocks, where):
    src = [PRELUDE, given]
    fns = []
    for k, (line, lines) in enumerate(blocks):
        lines = [dots(l) for l in lines]
        top, body = split(lines)
        src.append(f'#line {line} "{where}"')
        src += top
        if body:
            fns.append(k)
            src.append(f'__attribute__((unused)) static int aw_example_{k}(void *arg) {{')
            src.append(f'#line {line} "{where}"')
            src += body
            src.append('return 0; }')
    if not any(re.search(r'\bint main\(', l) for _, ls in blocks for l in ls):
        src.append('int main(void) { return 0; }')
    return '\n'.join(src) + '\n'


def md_examples(path):
    text = open(path, encoding='utf-8').read().split('\n')
    out, i = [], 0
    while i < len(text):
        if text[i].strip() == '```c':
            mark = text[i - 1].strip() if i else ''
            start, j = i + 1, i + 1
            while j < len(text) and text[j].strip() != '```':
                j += 1
            if not re.match(r'<!--\s*example:\s*fragment', mark):
                out.append((start + 1, text[start:j], mark))
            i = j
        i += 1
    return out


def norm(line):
    return re.sub(r'\s+', ' ', code_only(line)).strip()


def corpus():
    """Every code line of the example programs, normalised."""
    lines = set()
    for d, _, files in os.walk(os.path.join(ROOT, 'examples')):
        for f in files:
            if f.endswith(('.c', '.h')):
                lines.update(norm(l) for l in open(os.path.join(d, f), encoding='utf-8'))
    return lines


def excerpt_missing(lines, known):
    """The lines of a doc block not found in any example program."""
    return [l for l in lines if norm(l) and norm(l) != '...' and norm(l) not in known]


def md_given(mark):
    m = re.match(r'<!--\s*example:\s*given\s*(.*?)-->', mark, re.S)
    return m.group(1).strip() + '\n' if m else ''


def compile_unit(builddir, name, src, tmp):
    c = os.path.join(tmp, re.sub(r'\W', '_', name) + '.c')
    with open(c, 'w', encoding='utf-8') as f:
        f.write(src)
    cmd = [os.environ.get('CC', 'cc'), '-std=gnu11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror',
           '-Wno-unused', '-Wno-unused-parameter', '-Wno-missing-field-initializers',
           '-Wno-empty-body', '-I', os.path.join(ROOT, 'include'),
           '-I', os.path.join(builddir, 'include'), c, '-o', c[:-2],
           '-L', builddir, '-Wl,-rpath,' + os.path.abspath(builddir), '-lawith', '-lpthread']
    r = subprocess.run(cmd, capture_output=True, text=True)
    return name, r.returncode, r.stderr, c


def configured(builddir):
    try:
        text = open(os.path.join(builddir, 'include', 'awith', 'config.h')).read()
    except OSError:
        return {}
    return {m.group(1): m.group(2) == '1' for m in re.finditer(r'#define (AW_HAVE_\w+) (\d)', text)}


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    builddir, verbose = argv[1], '-v' in argv
    have = configured(builddir)
    jobs = []
    inc = os.path.join(ROOT, 'include', 'awith')
    for h in sorted(os.listdir(inc)):
        if not h.endswith('.h'):
            continue
        if h in LAYER and not have.get(LAYER[h], True):
            continue
        for k, blocks in enumerate(header_examples(os.path.join(inc, h))):
            where = f'include/awith/{h}'
            jobs.append((f'{where}:{blocks[0][0]}', unit(GIVEN.get(h, ''), blocks, where), None))
    docs = ['README.md'] + sorted('docs/' + d for d in os.listdir(os.path.join(ROOT, 'docs'))
                                  if d.endswith('.md'))
    for d in docs:
        for line, lines, mark in md_examples(os.path.join(ROOT, d)):
            if any(re.search(r'\baw_(pg|sqlite|http|tls)_', l) for l in lines) and \
                    not all(have.get(v, True) for v in LAYER.values()):
                continue
            jobs.append((f'{d}:{line}', unit(md_given(mark), [(line, lines)], d), lines))
    failed, excerpts, known = 0, 0, corpus()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        for (name, rc, err, c), job in zip(ex.map(lambda j: compile_unit(builddir, j[0], j[1], tmp), jobs), jobs):
            # a doc block that does not build alone may be an excerpt of an
            # example program (which its own test builds and runs): then
            # every line of it must still be in one
            if rc and job[2] is not None and not excerpt_missing(job[2], known):
                excerpts += 1
                if verbose:
                    print(f'ok   {name} (an excerpt of examples/)')
                continue
            if rc:
                failed += 1
                print(f'FAIL {name}\n{err}')
                if verbose:
                    print(open(c).read())
            elif verbose:
                print(f'ok   {name}')
    print(f'examples: {len(jobs) - failed} of {len(jobs)} good ({len(jobs) - failed - excerpts} compile '
          f'and link, {excerpts} excerpts of examples/), {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
