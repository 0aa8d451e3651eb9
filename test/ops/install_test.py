#!/usr/bin/env python3
"""install_test.py -- `meson install --destdir` puts the expected files in
place, and the installed pkg-config file lets a client compile, link and run.

Usage: install_test.py BUILD_DIR PREFIX CC SANITIZE -- EXPECTED_PATH...
Each EXPECTED_PATH is relative to PREFIX (or absolute). SANITIZE is meson's
b_sanitize ('none', 'address,undefined', ...): a sanitized library needs a
client built with the same runtime. Prints TAP."""
import os
import shutil
import subprocess
import sys
import tempfile

CLIENT = r'''
#include <relay/protocol.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
	unsigned char buf[64];
	size_t n = relay_frame_encode(buf, RELAY_MSG_HEARTBEAT, RELAY_FLAG_JSON, "{}", 2);
	struct relay_decoder d;
	struct relay_frame f;
	relay_decoder_init(&d, RELAY_DEFAULT_MAX_FRAME);
	relay_decoder_feed(&d, buf, n);
	if (relay_decoder_next(&d, &f) != RELAY_DECODE_FRAME || f.type != RELAY_MSG_HEARTBEAT ||
	    f.len != 2 || memcmp(f.payload, "{}", 2) != 0)
		return 1;
	relay_decoder_free(&d);
	printf("client ok: %s\n", relay_msg_type_name(f.type));
	return 0;
}
'''

results = []


def check(ok, what, detail=''):
    results.append((ok, what, detail))
    return ok


def main():
    sep = sys.argv.index('--')
    build, prefix, cc, sanitize = sys.argv[1:5]
    san = [] if sanitize in ('', 'none') else ['-fsanitize=' + sanitize]
    expected = sys.argv[sep + 1:]
    dest = tempfile.mkdtemp(prefix='relayd-destdir-')
    try:
        r = subprocess.run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet',
                            '--destdir', dest], capture_output=True, text=True, timeout=120)
        if not check(r.returncode == 0, 'meson install --destdir succeeds',
                     r.stdout + r.stderr):
            return
        installed = set()
        for d, _, files in os.walk(dest):
            for f in files:
                installed.add(os.path.relpath(os.path.join(d, f), dest))
        for p in expected:
            rel = p.lstrip('/') if os.path.isabs(p) else os.path.join(prefix.lstrip('/'), p)
            rel = os.path.normpath(rel)
            check(rel in installed or os.path.islink(os.path.join(dest, rel)),
                  'installed: ' + rel)
        # The unit: Type=notify, the installed binary, reload, hardening.
        units = [f for f in installed if f.endswith('/relayd.service')]
        if check(len(units) == 1, 'exactly one relayd.service installed', str(units)):
            unit_path = os.path.join(dest, units[0])
            with open(unit_path) as f:
                unit = f.read()
            bindir = [p for p in expected if p.endswith('/relayd')]
            want = ['Type=notify', 'ExecReload=/bin/kill -HUP $MAINPID', 'DynamicUser=yes',
                    'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes',
                    'PrivateTmp=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX']
            if bindir:
                want.append('ExecStart=' + os.path.join(prefix, bindir[0]) + ' --config ')
            missing = [w for w in want if w not in unit]
            check(not missing and 'LimitNOFILE=' in unit, 'relayd.service directives',
                  'missing: %s' % missing)
            if shutil.which('systemd-analyze'):
                r = subprocess.run(['systemd-analyze', 'verify', '--man=no', unit_path],
                                   capture_output=True, text=True, timeout=60)
                bad = [l for l in (r.stdout + r.stderr).splitlines()
                       if 'Unknown' in l or 'Failed to parse' in l or 'Invalid' in l]
                check(not bad, 'systemd-analyze verify finds no unknown or invalid setting',
                      '\n'.join(bad))
        # The pkg-config file: a client builds against the destdir copy.
        pcdirs = sorted({os.path.dirname(os.path.join(dest, f)) for f in installed
                         if f.endswith('/relay-protocol.pc')})
        if not check(len(pcdirs) == 1, 'exactly one relay-protocol.pc installed', str(pcdirs)):
            return
        env = dict(os.environ, PKG_CONFIG_PATH=pcdirs[0], PKG_CONFIG_SYSROOT_DIR=dest,
                   PKG_CONFIG_LIBDIR=pcdirs[0])
        flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'relay-protocol'],
                               capture_output=True, text=True, env=env)
        if not check(flags.returncode == 0 and '-lrelay-protocol' in flags.stdout,
                     'pkg-config --cflags --libs relay-protocol', flags.stdout + flags.stderr):
            return
        check(dest in flags.stdout, 'pkg-config flags point into the destdir', flags.stdout)
        src = os.path.join(dest, 'client.c')
        exe = os.path.join(dest, 'client')
        with open(src, 'w') as f:
            f.write(CLIENT)
        r = subprocess.run([cc, '-std=c11', '-Wall', '-Werror'] + san + [src, '-o', exe]
                           + flags.stdout.split(), capture_output=True, text=True)
        if not check(r.returncode == 0, 'a tiny client compiles and links with those flags',
                     r.stdout + r.stderr):
            return
        libdirs = [a[2:] for a in flags.stdout.split() if a.startswith('-L')]
        r = subprocess.run([exe], capture_output=True, text=True,
                           env=dict(os.environ, LD_LIBRARY_PATH=':'.join(libdirs)))
        check(r.returncode == 0 and 'client ok: HEARTBEAT' in r.stdout,
              'the client runs against the installed library', r.stdout + r.stderr)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


try:
    main()
except Exception as e:  # a crash is a failed test, not a silent one
    check(False, 'install test ran', repr(e))
print('1..%d' % len(results))
for i, (ok, what, detail) in enumerate(results, 1):
    print('%s %d - %s' % ('ok' if ok else 'not ok', i, what))
    if not ok and detail:
        for line in detail.strip().splitlines()[:40]:
            print('# ' + line)
sys.exit(0 if all(r[0] for r in results) else 1)
