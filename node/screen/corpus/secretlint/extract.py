#!/usr/bin/env python3
"""Extract secretlint's rule fixtures into node/screen/testdata/secretlint.

secretlint's npm packages (@secretlint/secretlint-rule-*) ship only the
compiled rules; the fixtures (test/snapshots/<case>/input and output.json)
live in the repository. Give this script a checkout of
https://github.com/secretlint/secretlint:

    python3 extract.py /path/to/secretlint ../../testdata/secretlint

Each case becomes one JSON line: the rule package, its version (from its
package.json), the case ("ng.*": secretlint reports the listed ranges;
"ok.*" and others with no report: clean), the input text and the byte
ranges secretlint reports. Packages that are not about secret values
(file names, home paths, Kubernetes kinds, comment filters, user
patterns, the example and the presets that repeat the others) are left
out.
"""
import json, os, subprocess, sys

SKIP = {"no-dotenv", "no-homedir", "no-k8s-kind-secret", "filter-comments", "pattern",
        "example", "preset-canary", "preset-recommend"}

def main(repo, out):
    base = os.path.join(repo, "packages", "@secretlint")
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows, versions = [], {}
    for pkg in sorted(os.listdir(base)):
        if not pkg.startswith("secretlint-rule-") or pkg[len("secretlint-rule-"):] in SKIP:
            continue
        snaps = os.path.join(base, pkg, "test", "snapshots")
        if not os.path.isdir(snaps):
            continue
        with open(os.path.join(base, pkg, "package.json")) as f:
            versions[pkg] = json.load(f)["version"]
        for case in sorted(os.listdir(snaps)):
            d = os.path.join(snaps, case)
            inp = next((os.path.join(d, n) for n in sorted(os.listdir(d)) if n.startswith("input")), None)
            if inp is None or not os.path.exists(os.path.join(d, "output.json")):
                continue
            if os.path.exists(os.path.join(d, ".secretlintrc.json")):
                continue  # the expectation depends on options moat does not have
            raw = open(inp, "rb").read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            msgs = json.load(open(os.path.join(d, "output.json"))).get("messages", [])
            # secretlint's ranges count UTF-16 code units; convert to bytes.
            ranges = [[utf16_to_byte(text, m["range"][0]), utf16_to_byte(text, m["range"][1])] for m in msgs if "range" in m]
            rows.append({"rule": pkg[len("secretlint-rule-"):], "case": case, "text": text, "ranges": ranges})
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("https://github.com/secretlint/secretlint commit %s\n" % commit)
        f.write("extracted by node/screen/corpus/secretlint/extract.py from packages/@secretlint/*/test/snapshots\n")
        for pkg, v in sorted(versions.items()):
            f.write("@secretlint/%s %s\n" % (pkg, v))
    subprocess.run(["cp", os.path.join(repo, "LICENSE"), os.path.join(out, "LICENSE")], check=True)

def utf16_to_byte(text, n):
    units, b = 0, 0
    for ch in text:
        if units >= n:
            break
        units += 2 if ord(ch) > 0xFFFF else 1
        b += len(ch.encode("utf-8"))
    return b

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
