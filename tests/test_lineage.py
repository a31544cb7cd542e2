"""``parsl-repro lineage``: a four-step pipeline (fetch -> clean -> stats -> plot) with a raw input,
recorded by a real run; then the figure is renamed, an intermediate edited, and the command asked
as a user asks it, in every format."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIPELINE = """
    import parsl_repro as parsl
    from parsl_repro import File, bash_app, python_app


    @bash_app
    def fetch(outputs=()):
        return f"echo raw > {outputs[0]}"


    @python_app
    def clean(inputs=(), outputs=()):
        with open(outputs[0], "w") as f:
            f.write("".join(open(i).read().upper() for i in inputs))
        return 1


    @python_app
    def stats(n, inputs=(), outputs=()):
        with open(outputs[0], "w") as f:
            f.write(str(len(open(inputs[0]).read()) + n))


    @python_app
    def plot(inputs=(), outputs=()):
        with open(outputs[0], "w") as f:
            f.write("plot of " + open(inputs[0]).read())


    @python_app
    def publish(inputs=()):
        return len(open(inputs[0]).read())


    with open("seed.txt", "w") as f:
        f.write("seed\\n")
    with parsl.load():
        a = fetch(outputs=[File("a.txt")])
        b = clean(inputs=[a.outputs[0], File("seed.txt")], outputs=[File("b.txt")])
        c = stats(b, inputs=[b.outputs[0]], outputs=[File("c.txt")])
        d = plot(inputs=[c.outputs[0]], outputs=[File("fig.txt")])
        print(publish(inputs=[d.outputs[0]]).result())
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lineage")
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    done = subprocess.run([sys.executable, "pipeline.py"], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (root / "fig.txt").rename(root / "figure3.txt")  # as a paper's figure
    return root


def lineage(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parsl_repro.cli", "lineage", *args], cwd=root,
                          capture_output=True, text=True, timeout=60)


def producers(node: dict) -> list[dict]:
    return node["producers"]


def test_the_producer_of_a_renamed_file_is_found_by_its_content(pipeline):
    done = lineage(pipeline, "figure3.txt", "--format", "json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["found_by"] == "content"
    assert found["sha256"] == hashlib.sha256((pipeline / "figure3.txt").read_bytes()).hexdigest()
    assert found["recorded_urls"] == [str(pipeline / "fig.txt")]
    assert "it was recorded as " + str(pipeline / "fig.txt") in found["notes"][0]
    assert "moved or renamed" in found["notes"][0]
    (plot,) = producers(found["root"])
    assert plot["app"] == "plot" and plot["status"] == "exec_done" and len(plot["app_digest"]) == 64
    assert "inputs=[<output 'c.txt' of task 2>]" in plot["args"]


def test_it_walks_back_to_the_raw_inputs_and_stops_at_the_depth_asked(pipeline):
    found = json.loads(lineage(pipeline, "figure3.txt", "--format", "json").stdout)
    (plot,) = producers(found["root"])
    (c_txt,) = plot["files"]
    (stats,) = producers(c_txt)
    (b_txt,) = stats["files"]
    (clean,) = producers(b_txt)
    a_txt, seed = clean["files"]
    assert [stats["app"], clean["app"], producers(a_txt)[0]["app"]] == ["stats", "clean", "fetch"]
    assert seed["url"].endswith("seed.txt") and seed["raw"] and not producers(seed)
    assert found["tasks"] == 4
    # three levels: plot, stats, clean; what clean read is named, but not followed
    three = json.loads(lineage(pipeline, "figure3.txt", "--depth", "3", "--format", "json").stdout)
    clean = producers(producers(three["root"])[0]["files"][0])[0]["files"][0]["producers"][0]
    assert clean["app"] == "clean" and three["tasks"] == 3
    a_txt, seed = clean["files"]
    assert a_txt["unexpanded"] and not a_txt["producers"] and seed["raw"]


def test_the_text_tree_names_apps_runs_and_raw_inputs(pipeline):
    done = lineage(pipeline, "figure3.txt", "--depth", "3")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("note: found by its content")
    assert lines[1] == f"{pipeline / 'fig.txt'} [sha256 {lines[1].split('sha256 ')[1][:12]}]"
    assert lines[2].startswith("└─ written by plot(") and "task 3 of run" in lines[2]
    assert any(line.strip().startswith("└─ written by stats(") for line in lines)
    assert any(line.endswith("a.txt [sha256 " + line.split("sha256 ")[-1][:12] + "] (more beyond --depth)")
               for line in lines if "a.txt" in line)
    assert any("seed.txt" in line and "(a raw input: no recorded task wrote it)" in line for line in lines)


def test_forward_lists_everything_derived_from_a_file(pipeline):
    found = json.loads(lineage(pipeline, "a.txt", "--forward", "--format", "json").stdout)
    (clean,) = found["root"]["consumers"]
    assert clean["app"] == "clean"
    chain = [clean["app"]]
    node = clean
    while node["files"]:
        (written,) = node["files"]
        if not written["consumers"]:
            break
        node = written["consumers"][0]
        chain.append(node["app"])
    assert chain == ["clean", "stats", "plot", "publish"]
    text = lineage(pipeline, "a.txt", "--forward").stdout
    assert "read by clean(" in text and "read by publish(" in text


def test_dot_is_a_graph_of_files_and_tasks(pipeline):
    done = lineage(pipeline, "figure3.txt", "--format", "dot")
    assert done.returncode == 0
    dot = done.stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert dot.count("shape=box") == 4 and dot.count("shape=note") == 5
    assert dot.count('[label="read"]') == 4 and dot.count('[label="wrote"]') == 4
    assert "fillcolor=lightyellow" in dot  # seed.txt, the raw input


def test_a_changed_file_is_matched_by_path_only_and_says_so(pipeline):
    original = (pipeline / "c.txt").read_bytes()
    recorded = hashlib.sha256(original).hexdigest()
    (pipeline / "c.txt").write_text("edited by hand")
    try:
        done = lineage(pipeline, "c.txt", "--format", "json")
        assert done.returncode == 1
        found = json.loads(done.stdout)
        assert found["found_by"] == "path" and found["sha256"] == recorded
        assert "only the path matches: the content of c.txt changed since it was recorded" in found["notes"][0]
        assert producers(found["root"])[0]["app"] == "stats"
    finally:
        (pipeline / "c.txt").write_bytes(original)


def test_a_file_the_store_does_not_know_is_an_error_naming_files_of_that_name(pipeline):
    (pipeline / "b-copy").mkdir(exist_ok=True)
    (pipeline / "b-copy" / "b.txt").write_text("something else")
    done = lineage(pipeline, "b-copy/b.txt")
    assert done.returncode == 1
    assert "b-copy/b.txt is not in this store: no file with its content" in done.stderr
    assert f"Files named b.txt are: {pipeline / 'b.txt'}" in done.stderr
    done = lineage(pipeline, "nothing-like-it.txt")
    assert done.returncode == 1 and "nor any file named nothing-like-it.txt" in done.stderr


def test_a_sha256_can_be_asked_for(pipeline):
    digest = hashlib.sha256((pipeline / "a.txt").read_bytes()).hexdigest()
    found = json.loads(lineage(pipeline, f"sha256:{digest}", "--format", "json").stdout)
    assert found["found_by"] == "sha256" and producers(found["root"])[0]["app"] == "fetch"


def test_the_same_bytes_written_elsewhere_do_not_stand_for_the_files_making(tmp_path):
    """An unrelated run wrote a file with the same content first: the lineage of this file follows the
    task that wrote it here, and lists the other only as also writing those bytes."""
    unrelated = """
        import parsl_repro as parsl
        from parsl_repro import File, bash_app

        @bash_app
        def zero(outputs=()):
            return f"echo 0 > {outputs[0]}"

        with parsl.load():
            zero(outputs=[File("unrelated.txt")]).result()
    """
    counted = """
        import parsl_repro as parsl
        from parsl_repro import File, bash_app

        @bash_app
        def errors(inputs=(), outputs=()):
            return f"grep -c ERROR {inputs[0]} > {outputs[0]}; true"

        with open("log.txt", "w") as f:
            f.write("all fine\\n")
        with parsl.load():
            errors(inputs=[File("log.txt")], outputs=[File("error_count.txt")]).result()
    """
    for name, source in (("a.py", unrelated), ("b.py", counted)):
        (tmp_path / name).write_text(textwrap.dedent(source))
        done = subprocess.run([sys.executable, name], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    found = json.loads(lineage(tmp_path, "error_count.txt", "--format", "json").stdout)
    assert found["root"]["url"] == str(tmp_path / "error_count.txt") and found["notes"] == []
    (errors,) = found["root"]["producers"]
    assert errors["app"] == "errors" and errors["files"][0]["url"].endswith("log.txt")
    assert [t["app"] for t in found["root"]["also"]] == ["zero"]
