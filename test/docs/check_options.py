#!/usr/bin/env python3
"""check_options.py RELAYD SOURCE_ROOT -- every relayd option is documented
everywhere, and everything documented is an option.

The option list comes from the binary: `relayd --help` prints one line per
entry of the option table (src/relayd/base/options.c) with its default and
its environment variable. Each option must then appear, with the same
variable, in the manual page (docs/relayd.8.scd, OPTIONS), in the options
table of docs/operations.md (with the same default where that is written as
code), and in contrib/relayd.conf as a (commented-out) `name = default` line.
The other way round, every `--name` those files mention and every key of
relayd.conf must be an option. The man page and operations.md must also
agree on which options are live (reloadable on SIGHUP).

Prints one line per problem and exits 1 if there is any.
"""
import re
import subprocess
import sys

# Options relayd.conf does not list, and why.
CONF_EXEMPT = {"config": "the file cannot name itself (refused inside a configuration file)"}
# `--name` words in operations.md that belong to other programs.
FOREIGN = {
    "--prefix": "meson setup",
    "--now": "systemctl enable",
    "--cflags": "pkg-config",
    "--libs": "pkg-config",
    # relay-bench (docs/relay-bench.md), in the sizing and TLS measurements
    "--conns": "relay-bench",
    "--transport": "relay-bench",
    # relay-cli token (docs/cli.md), shown where operations.md mints tokens
    "--key": "relay-cli token",
    "--kid": "relay-cli token",
    "--sub": "relay-cli token",
    "--aud": "relay-cli token",
    "--ttl": "relay-cli token",
    "--nbf": "relay-cli token",
    "--rooms-join": "relay-cli token",
    "--rooms-publish": "relay-cli token",
    # relay-cli sending a token, in operations.md's access-control example
    "--token": "relay-cli",
    "--token-file": "relay-cli",
    # relay-cli connecting to wss://, in operations.md's wss section
    "--ws": "relay-cli",
    "--tls-ca": "relay-cli",
}
BUILTIN = {"--help", "--version"}

HELP_LINE = re.compile(r"^  --([a-z0-9-]+)(?: [A-Z]+)?\s+.*\(default: (.*)\) \[([A-Z0-9_]+)\]$")
MAN_ENTRY = re.compile(r"^\*--([a-z0-9-]+)\*[^[]*\[([A-Z0-9_]+)\]( _live_)?\s*$")
OPS_ROW = re.compile(r"^\| `--([a-z0-9-]+)[^`]*` \| `([A-Z0-9_]+)` \| ([^|]*) \|[^|]*\| (yes|no) \|")
CONF_KEY = re.compile(r"^#?\s*([a-z][a-z0-9_-]*)\s*=\s*(.*?)\s*$")
DASHED = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def options_from_help(relayd):
    out = subprocess.run([relayd, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        sys.exit(f"{relayd} --help: exit status {out.returncode}: {out.stderr}")
    opts = {}
    for line in out.stdout.splitlines():
        m = HELP_LINE.match(line)
        if m:
            opts[m.group(1)] = {"default": m.group(2), "env": m.group(3)}
    if len(opts) < 10:
        sys.exit(f"{relayd} --help: found only {len(opts)} options; has its format changed?\n"
                 + out.stdout)
    return opts


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def check_mentions(where, text, opts, foreign):
    for word in sorted(set(DASHED.findall(text))):
        if word[2:] not in opts and word not in BUILTIN and word not in foreign:
            problem(where, f"mentions {word}, which is not a relayd option")


def check_man(path, opts):
    text = read(path)
    entries = {}
    for line in text.splitlines():
        m = MAN_ENTRY.match(line)
        if m:
            entries[m.group(1)] = (m.group(2), bool(m.group(3)))
    for name, o in opts.items():
        if name not in entries:
            problem(path, f"no entry '*--{name}* ... [{o['env']}]' under OPTIONS")
        elif entries[name][0] != o["env"]:
            problem(path, f"--{name} names {entries[name][0]}; relayd reads {o['env']}")
    check_mentions(path, text, opts, {})
    return {n for n, (_, live) in entries.items() if live}


def check_operations(path, opts):
    text = read(path)
    rows = {}
    for line in text.splitlines():
        m = OPS_ROW.match(line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip(), m.group(4) == "yes")
    for name, o in opts.items():
        if name not in rows:
            problem(path, f"no row for --{name} in the options table")
            continue
        env, default, _ = rows[name]
        if env != o["env"]:
            problem(path, f"--{name} names {env}; relayd reads {o['env']}")
        if default.startswith("`") and default.strip("`") != o["default"]:
            problem(path, f"--{name} default {default}; relayd --help says {o['default']}")
    check_mentions(path, text, opts, FOREIGN)
    return {n for n, (_, _, live) in rows.items() if live}


def check_conf(path, opts):
    keys = {}
    for n, line in enumerate(read(path).splitlines(), 1):
        m = CONF_KEY.match(line)
        if m:
            keys[m.group(1).replace("_", "-")] = (n, m.group(2))
    for key, (n, _) in keys.items():
        if key not in opts:
            problem(f"{path}:{n}", f"'{key}' is not a relayd option")
        elif key in CONF_EXEMPT:
            problem(f"{path}:{n}", f"'{key}' cannot be set here: {CONF_EXEMPT[key]}")
    for name, o in opts.items():
        if name in CONF_EXEMPT:
            continue
        if name not in keys:
            problem(path, f"no '#{name} = {o['default']}' line")
            continue
        n, value = keys[name]
        if o["default"] != "none" and value != o["default"]:
            problem(f"{path}:{n}", f"{name} = {value}; the default is {o['default']}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    relayd, root = sys.argv[1], sys.argv[2]
    opts = options_from_help(relayd)
    live_man = check_man(f"{root}/docs/relayd.8.scd", opts)
    live_ops = check_operations(f"{root}/docs/operations.md", opts)
    for name in sorted(live_man ^ live_ops):
        problem("docs", f"--{name} is live in "
                + ("relayd.8.scd but not operations.md" if name in live_man
                   else "operations.md but not relayd.8.scd"))
    check_conf(f"{root}/contrib/relayd.conf", opts)
    for p in problems:
        print(p)
    print(f"{len(opts)} options, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
