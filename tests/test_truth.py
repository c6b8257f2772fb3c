"""Ground-truth groups in the layouts planted and real data come in (``tribes evaluate --labels``)."""

from __future__ import annotations

import gzip

import numpy as np
import orjson
import pytest

from tribes.cli import main
from tribes.errors import InputError
from tribes.evaluation.truth import load_groups
from tribes.jsonl import open_output, write_jsonl
from tribes.synth import SynthConfig, generate, planted_truth

USERS = np.array(["a", "b", "c", "d", "e", "f"])
PARTITION = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "y"}  # f in no group


def as_sets(groups):
    return sorted(sorted(USERS[g].tolist()) for g in groups)


def same_partition(labels, want: dict[str, str]) -> bool:
    """Labels equal ``want`` up to renaming; users not in ``want`` unlabelled."""
    seen: dict[str, int] = {}
    for user, label in zip(USERS, labels, strict=True):
        if user not in want:
            if label != -1:
                return False
        elif seen.setdefault(want[user], int(label)) != label or label < 0:
            return False
    return len(set(seen.values())) == len(seen)


@pytest.mark.parametrize("layout", ["jsonl", "node-groups", "groups", "groups.gz"])
def test_every_layout_reads_the_same_partition(tmp_path, layout):
    """The same partition written as planted truth, LFR's community.dat and SNAP's .cmty.txt
    (gzipped too), with comments, blank lines and ids the data does not have."""
    unknown = "zz"
    if layout == "jsonl":
        text = "".join(
            orjson.dumps({"user_id": u, "tribes": [g]}).decode() + "\n"
            for u, g in [*PARTITION.items(), (unknown, "x")]
        )
        path = tmp_path / "truth.jsonl"
    elif layout == "node-groups":
        text = (
            "# node community\n"
            + "".join(f"{u}\t{g}\n" for u, g in PARTITION.items())
            + f"{unknown} 7\n\n"
        )
        path = tmp_path / "community.dat"
    else:
        text = "% groups\na b c\n\nd e " + unknown + "\n"
        path = tmp_path / "net.all.cmty.txt"
    if layout.endswith(".gz"):
        path = path.with_suffix(".txt.gz")
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    labels, groups = load_groups(path, USERS)
    assert same_partition(labels, PARTITION)
    assert as_sets(groups) == [["a", "b", "c"], ["d", "e"]]
    forced = "groups" if layout.startswith("groups") else layout
    labels_forced, groups_forced = load_groups(path, USERS, forced)
    assert np.array_equal(labels_forced, labels) and as_sets(groups_forced) == as_sets(groups)


def test_overlapping_groups_keep_every_membership_and_the_first_as_primary(tmp_path):
    path = tmp_path / "community.dat"
    path.write_text("a 1 2\nb 1\nc 2 1\nd 2\n")
    labels, groups = load_groups(path, USERS)
    assert labels[0] == labels[1] != labels[2] == labels[3] and labels[4] == labels[5] == -1
    assert as_sets(groups) == [["a", "b", "c"], ["a", "c", "d"]]
    # The same groups one per line overlap: no primary groups, only the groups.
    cmty = tmp_path / "x.cmty.txt"
    cmty.write_text("a b c\na c d\n")
    labels, groups = load_groups(cmty, USERS)
    assert labels is None and as_sets(groups) == [["a", "b", "c"], ["a", "c", "d"]]


def test_circles_without_ids_stay_apart(tmp_path):
    path = tmp_path / "circles.jsonl"
    path.write_text(
        '{"members": ["a", "b"]}\n{"members": ["c", "d"]}\n{"circle_id": 3, "members": ["e", "f"]}\n'
    )
    labels, groups = load_groups(path, USERS)
    assert labels is None and as_sets(groups) == [["a", "b"], ["c", "d"], ["e", "f"]]


@pytest.mark.parametrize(
    ("name", "text", "fmt", "line"),
    [
        ("community.dat", "a 1\nb\n", "auto", 2),
        (
            "truth.jsonl",
            '{"user_id": "a", "tribes": [1]}\n{"user_id": "b", "tribes": 1}\n',
            "auto",
            2,
        ),
        ("truth.jsonl", '{"user_id": "a", "tribes": [1]}\n{broken\n', "auto", 2),
        ("truth.jsonl", "\n# c\n[1, 2]\n", "jsonl", 3),
        ("community.dat", "a 1\n\xff\xfe 2\n", "node-groups", 2),
    ],
)
def test_a_malformed_line_is_an_input_error_naming_file_and_line(tmp_path, name, text, fmt, line):
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_groups(path, USERS, fmt)
    assert info.value.path == str(path) and info.value.line == line


def test_unknown_format_is_an_input_error(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a 1\n")
    with pytest.raises(InputError, match="unknown format"):
        load_groups(path, USERS, "csv")


def test_cli_evaluate_reads_community_dat_and_rejects_bad_labels(tmp_path, capsys):
    """The planted truth of a synthetic network written as LFR's community.dat gives the same
    tribe quality as the JSON Lines truth; a malformed or unmatched file exits 2, naming it."""
    config = SynthConfig(n_users=200, seed=2)
    events, truth_jsonl, dat = (
        tmp_path / "e.jsonl",
        tmp_path / "truth.jsonl",
        tmp_path / "community.dat",
    )
    with open_output(events) as out:
        write_jsonl(generate(config), out)
    truth = list(planted_truth(config))
    with open_output(truth_jsonl) as out:
        write_jsonl(truth, out)
    dat.write_text(
        "".join(f"{row['user_id']}\t{' '.join(map(str, row['tribes']))}\n" for row in truth)
    )

    def quality(labels: str) -> dict:
        capsys.readouterr()
        assert (
            main(
                [
                    "-q",
                    "evaluate",
                    str(events),
                    "--models",
                    "tribes",
                    "-k",
                    "5",
                    "--json",
                    "--labels",
                    labels,
                ]
            )
            == 0
        )
        return orjson.loads(capsys.readouterr().out)["tribes"]

    from_jsonl, from_dat = quality(str(truth_jsonl)), quality(str(dat))
    assert from_dat == from_jsonl and from_dat["nmi"] > 0.5
    bad = tmp_path / "bad.dat"
    bad.write_text("u000000 1\nu000001\n")
    assert main(["-q", "evaluate", str(events), "--models", "tribes", "--labels", str(bad)]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
    strangers = tmp_path / "strangers.dat"
    strangers.write_text("nobody 1\nno-one 1\n")
    assert (
        main(["-q", "evaluate", str(events), "--models", "tribes", "--labels", str(strangers)]) == 2
    )
    assert "do the ids match" in capsys.readouterr().err
