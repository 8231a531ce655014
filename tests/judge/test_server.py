"""lmread judge against a scripted chat server: valid answers, malformed JSON, prose refusals,
out-of-range positions, HTTP errors, slow answers; resuming, blindness, and the ordinary-mark
code paths (calibration, agreement, survival) on its marks (issue 19)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from lmread.cli import main
from lmread.judge.engines import ChatServerJudge, JudgeSettings
from lmread.judge.http import ChatClient
from lmread.judge.localize import numbered, split_sentences
from lmread.judge.runner import choose, judge_annotator, run_judge
from lmread.judge.templates import SHIPPED
from lmread.records import Mark
from lmread.study import Study
from tests.fixtures.fake_server import Reply, refused_port
from tests.fixtures.judge import chat_reply, json_answer, make_study, piece_sample, scripted_chat_server, word_pieces

TEXTS = {
    "s_a": "The ship left the harbour at dawn. The crew sang as the sails filled. Then the sea turned to jam.",
    "s_b": "Rain fell all night. By morning the river had risen over the road.",
    "s_c": "He opened the door. He opened the door. He opened the door.",
}
SECRET_MODEL = "secret-model-7b"


def samples() -> list[Any]:
    out = [piece_sample(sid, word_pieces(text), model=SECRET_MODEL, n_params=7_000_000_000)
           for sid, text in TEXTS.items()]
    out.append(piece_sample("s_ctl", word_pieces("A plain human sentence. Another one here."),
                            control={"kind": "human", "onset": None, "category": None, "parts": [], "seed": 3}))
    return out


def scripted(body: dict[str, Any]) -> Reply:
    """Answers by what the judge was shown."""
    shown = body["messages"][-1]["content"]
    if "sea turned to jam" in shown:
        return chat_reply(json_answer(falls=True, sentence=3, quote="the sea turned to jam", category="commonsense",
                                      severity=3), prompt_tokens=321, completion_tokens=31)
    if "river had risen" in shown:
        return chat_reply(json_answer(falls=False), prompt_tokens=200, completion_tokens=5)
    if "opened the door" in shown:
        return chat_reply("I'm sorry, but I can't help with that.", prompt_tokens=150, completion_tokens=12)
    return chat_reply('{"falls": true, "sentence": 7, "quote": "x"}', prompt_tokens=100, completion_tokens=15)


def cli(*args: str) -> int:
    return main(list(args))


def marks_of(study: Path, who: str) -> list[dict[str, Any]]:
    path = study / "marks" / f"{who}.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_judge_cli_writes_ordinary_marks_blind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_study(tmp_path / "st", samples())
    with scripted_chat_server(scripted) as server:
        rc = cli("judge", "--study", str(st.path), "--backend", "openai", "--base-url", server.base_url,
                 "--model", "judge-model", "--json")
        bodies = server.posted("/v1/chat/completions")
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    who = judge_annotator("judge-model", "first-wrong")
    assert who == "auto-judge-judge-model-first-wrong"
    t = report["templates"][0]
    assert (t["falls"], t["no_falls"], t["skips"]) == (1, 1, 2)
    assert report["tokens_in"] == 321 + 200 + 150 + 100 and report["tokens_out"] == 31 + 5 + 12 + 15
    # blind: the judge never sees the model, its size, the sample id or the control flag
    assert len(bodies) == 4
    for body in bodies:
        shown = json.dumps(body)
        for secret in (SECRET_MODEL, "7000000000", "s_a", "s_b", "s_c", "s_ctl", "onset"):
            assert secret not in shown
        # the message is made of the prompt and the text alone
        texts = [text for text in [*TEXTS.values(), "A plain human sentence. Another one here."]
                 if text.split(".")[0] in body["messages"][0]["content"]]
        assert len(texts) == 1 and len(body["messages"]) == 1
        sents = split_sentences(texts[0])
        assert body["messages"][0]["content"] == SHIPPED["first-wrong"].render(
            "Write about the sea.", numbered(sents), len(sents))
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"]["required"] == ["falls"]
        assert body["temperature"] == 0.0 and body["model"] == "judge-model"
    marks = {m["sample"]: m for m in marks_of(st.path, who)}
    fell = marks["s_a"]
    sample = Study.open(st.path).samples["s_a"]
    assert fell["kind"] == "fall" and sample.piece(fell["at"]) == " the" and fell["read_to"] == sample.n_tokens
    assert sample.text[sample.tokens.offsets[fell["at"]]:].startswith(" the sea turned")
    assert fell["category"] == "commonsense" and fell["severity"] == 3 and fell["client"] == "judge"
    det = fell["detector"]
    assert det["name"] == "judge" and det["params"]["template"] == "first-wrong"
    assert det["params"]["template_sha256"] == SHIPPED["first-wrong"].sha256
    assert det["params"]["sampling"] == {"temperature": 0.0, "top_p": 1.0, "max_tokens": 200, "seed": 0}
    assert det["tokens"] == {"in": 321, "out": 31}
    assert json.loads(det["answer"])["quote"] == "the sea turned to jam"
    assert det["identity"]["backend"] == "openai"
    assert marks["s_b"]["kind"] == "no_fall" and marks["s_b"]["read_to"] == Study.open(st.path).samples["s_b"].n_tokens
    refusal = marks["s_c"]
    assert refusal["kind"] == "skip" and "no JSON object" in refusal["note"] and "can't help" in refusal["note"]
    assert refusal["detector"]["answer"] == "I'm sorry, but I can't help with that."
    schema = json.loads((Path(__file__).resolve().parents[2] / "annotations" / "schema" / "mark.schema.json")
                        .read_text(encoding="utf-8"))
    for mark in marks.values():
        jsonschema.validate(mark, schema)
    out_of_range = marks["s_ctl"]
    assert out_of_range["kind"] == "skip" and "sentence 7 is outside the text (1..2)" in out_of_range["note"]


def test_rerun_asks_only_for_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_study(tmp_path / "st", samples()[:2])
    base = ["judge", "--study", str(st.path), "--backend", "openai", "--model", "judge-model", "--json"]
    with scripted_chat_server(scripted) as server:
        assert cli(*base, "--base-url", server.base_url) == 0
        assert len(server.posted("/v1/chat/completions")) == 2
        capsys.readouterr()
        assert cli(*base, "--base-url", server.base_url) == 0
        assert len(server.posted("/v1/chat/completions")) == 2  # nothing asked again
        again = json.loads(capsys.readouterr().out)
        assert again["templates"][0]["unchanged"] == 2 and again["tokens_in"] == 0
        st.add_samples(samples()[2:])
        assert cli(*base, "--base-url", server.base_url, "--template", "first-wrong,editor") == 0
        # two new samples with first-wrong, all four with editor
        assert len(server.posted("/v1/chat/completions")) == 2 + 2 + 4
        capsys.readouterr()
        # the two skips asked again only with --retry-skips
        assert cli(*base, "--base-url", server.base_url, "--retry-skips") == 0
        assert len(server.posted("/v1/chat/completions")) == 8 + 2
        capsys.readouterr()
        # other sampling settings are another judge run: asked again, superseding the old marks
        assert cli(*base, "--base-url", server.base_url, "--temperature", "0.5", "--limit", "1") == 0
        assert len(server.posted("/v1/chat/completions")) == 11
    editor = {m["sample"] for m in marks_of(st.path, "auto-judge-judge-model-editor")}
    assert editor == set(TEXTS) | {"s_ctl"}


def test_limit_and_share_are_seeded_and_nested() -> None:
    pool = [piece_sample(f"s_{i:03d}", ["a", " b."]) for i in range(200)]
    five = choose(pool, 5, None, seed=1)
    ten = choose(pool, 10, None, seed=1)
    assert [s.id for s in ten[:5]] == [s.id for s in five]
    assert [s.id for s in choose(pool, 5, None, seed=2)] != [s.id for s in five]
    half = choose(pool, None, 0.5, seed=1)
    assert 70 < len(half) < 130
    grown = choose([*pool, piece_sample("s_new", ["x."])], None, 0.5, seed=1)
    assert {s.id for s in half} <= {s.id for s in grown}
    assert len(choose(pool, 3, 0.5, seed=1)) == 3


@pytest.mark.parametrize(("status", "message"), [
    (500, "answered HTTP 500"),
    (401, "needs an API key"),
    (404, "answered HTTP 404"),
])
def test_http_errors_end_the_run_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int,
                                               message: str) -> None:
    st = make_study(tmp_path / "st", samples()[:2])
    with scripted_chat_server(lambda body: Reply(json={"error": {"message": "boom"}}, status=status)) as server:
        rc = cli("judge", "--study", str(st.path), "--backend", "openai", "--base-url", server.base_url,
                 "--model", "judge-model", "--retries", "0")
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (st.path / "marks" / "auto-judge-judge-model-first-wrong.jsonl").exists()


def test_server_down_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_study(tmp_path / "st", samples()[:1])
    rc = cli("judge", "--study", str(st.path), "--backend", "openai", "--base-url",
             f"http://127.0.0.1:{refused_port()}", "--model", "judge-model", "--retries", "0")
    err = capsys.readouterr().err
    assert rc != 0 and err.startswith("lmread: error: cannot connect") and err.count("\n") == 1


def test_retries_are_bounded_and_a_503_then_ok_works(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st", samples()[:1])
    calls: list[int] = []

    def flaky(body: dict[str, Any]) -> Reply:
        calls.append(1)
        if len(calls) < 3:
            return Reply(json={"error": {"message": "loading"}}, status=503)
        return scripted(body)

    with scripted_chat_server(flaky) as server:
        engine = ChatServerJudge(ChatClient(server.base_url, retries=3), _ident(server.base_url), "judge-model")
        report = run_judge(Study.open(st.path), engine, [SHIPPED["strict"]], JudgeSettings())
    assert len(calls) == 3 and report.templates[0].falls == 1 and not report.errors


def test_no_constrain_sends_no_schema_and_still_parses(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st", samples()[:1])
    fenced = "Here is my verdict:\n```json\n" + json_answer(falls=True, sentence=2, quote="The crew") + "\n```"
    with scripted_chat_server(lambda body: chat_reply(fenced)) as server:
        engine = ChatServerJudge(ChatClient(server.base_url), _ident(server.base_url), "judge-model", constrain=False)
        report = run_judge(Study.open(st.path), engine, [SHIPPED["strict"]], JudgeSettings())
        (body,) = server.posted("/v1/chat/completions")
    assert "response_format" not in body and report.templates[0].falls == 1
    (mark,) = marks_of(st.path, report.templates[0].annotator)
    sample = Study.open(st.path).samples["s_a"]
    assert sample.piece(mark["at"]) == " The" and mark["at"] == 7


def test_context_too_long_skips_that_sample_and_goes_on(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st", samples()[:3])

    def small_context(body: dict[str, Any]) -> Reply:
        if "sails filled" in body["messages"][-1]["content"]:
            return Reply(json={"error": {"code": 400, "message": "the request exceeds the available context size, "
                                         "try increasing it", "type": "exceed_context_size_error"}}, status=400)
        return scripted(body)

    with scripted_chat_server(small_context) as server:
        engine = ChatServerJudge(ChatClient(server.base_url), _ident(server.base_url), "judge-model")
        report = run_judge(Study.open(st.path), engine, [SHIPPED["editor"]], JudgeSettings())
    rep = report.templates[0]
    assert rep.too_long == 1 and rep.no_falls == 1 and rep.skips == 2 and not report.errors
    # any other 400 is the server refusing: the run ends with its message
    with scripted_chat_server(lambda body: Reply(json={"error": {"message": "max_tokens must be at most 100"}},
                                                 status=400)) as server:
        engine = ChatServerJudge(ChatClient(server.base_url), _ident(server.base_url), "judge-model")
        refused = run_judge(Study.open(st.path), engine, [SHIPPED["strict"]], JudgeSettings())
    assert refused.templates[0].too_long == 0 and "HTTP 400" in refused.errors[0]
    assert "max_tokens must be at most 100" in refused.errors[0]
    marks = {m["sample"]: m for m in marks_of(st.path, rep.annotator)}
    assert marks["s_a"]["kind"] == "skip" and "too long for the judge" in marks["s_a"]["note"]


def test_slow_answers_run_concurrently_and_timeouts_leave_the_sample(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st", samples())
    active = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def slow(body: dict[str, Any]) -> Reply:
        with lock:
            active["now"] += 1
            active["peak"] = max(active["peak"], active["now"])
        time.sleep(3.0 if "river had risen" in body["messages"][-1]["content"] else 0.4)
        with lock:
            active["now"] -= 1
        return scripted(body)

    with scripted_chat_server(slow) as server:
        engine = ChatServerJudge(ChatClient(server.base_url, read_timeout_s=1.5), _ident(server.base_url),
                                 "judge-model", concurrency=4)
        report = run_judge(Study.open(st.path), engine, [SHIPPED["first-wrong"]], JudgeSettings())
        assert active["peak"] >= 3
        assert report.templates[0].failed == 1 and "no answer" in report.errors[0]
        marked = {m["sample"] for m in marks_of(st.path, report.templates[0].annotator)}
        assert marked == {"s_a", "s_c", "s_ctl"}  # the slow one is left for a re-run


def test_bad_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = make_study(tmp_path / "st", samples()[:1])
    bad = tmp_path / "t.txt"
    bad.write_text("no placeholders", encoding="utf-8")
    for args, message in [
        (["--template", "nope"], "unknown template 'nope'"),
        (["--template-file", str(bad)], "lacks the placeholder"),
        (["--backend", "openai"], "needs --base-url"),
        (["--limit", "0"], "--limit"),
        (["--share", "1.5"], "--share"),
        (["--backend", "openai", "--base-url", "http://x", "--api-key-env", "LMREAD_NO_SUCH_VAR_1"], "is not set"),
        (["--base-url", "http://x"], "belong to --backend openai"),
        (["--max-tokens", "2"], "--max-tokens"),
        (["--model", "no-such-model"], "no-such-model"),
    ]:
        rc = cli("judge", "--study", str(st.path), "--model", "judge-model", *args)
        err = capsys.readouterr().err
        assert rc == 2 and message in err and err.startswith("lmread: error:"), (args, err)


def test_api_key_is_sent_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "judge-secret-key-123456"
    monkeypatch.setenv("JUDGE_KEY", key)
    st = make_study(tmp_path / "st", samples()[:1])
    seen: list[str] = []
    with scripted_chat_server(scripted) as server:
        orig = server.httpd.RequestHandlerClass.do_POST

        def spy(handler: Any) -> None:
            seen.append(handler.headers.get("Authorization", ""))
            orig(handler)

        server.httpd.RequestHandlerClass.do_POST = spy  # type: ignore[method-assign]
        assert cli("judge", "--study", str(st.path), "--backend", "openai", "--base-url", server.base_url,
                   "--model", "judge-model", "--api-key-env", "JUDGE_KEY") == 0
    assert seen == [f"Bearer {key}"]
    for file in st.path.rglob("*"):
        if file.is_file():
            assert key not in file.read_text(encoding="utf-8", errors="replace")


def test_judge_marks_go_through_calibration_agreement_survival(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    st = make_study(tmp_path / "st", samples(), marks=[
        Mark(sample="s_a", annotator="alice", kind="fall", at=15, read_to=20, category="commonsense"),
        Mark(sample="s_b", annotator="alice", kind="no_fall", read_to=12),
        Mark(sample="s_c", annotator="alice", kind="fall", at=4, read_to=12, category="repetition"),
        Mark(sample="s_ctl", annotator="alice", kind="no_fall", read_to=7),
    ])

    def by_template(body: dict[str, Any]) -> Reply:
        shown = body["messages"][-1]["content"]
        if "plain human sentence" in shown:  # the control: "editor" calls it a fall, the others do not
            answer = (json_answer(falls=True, sentence=2, quote="Another") if "an editor" in shown
                      else json_answer(falls=False))
            return chat_reply(answer)
        return scripted(body)

    with scripted_chat_server(by_template) as server:
        assert cli("judge", "--study", str(st.path), "--backend", "openai", "--base-url", server.base_url,
                   "--model", "judge-model", "--template", "all") == 0
    capsys.readouterr()
    judges = [f"auto-judge-judge-model-{t}" for t in ("editor", "first-wrong", "strict")]
    assert cli("agreement", "--study", str(st.path), "--json") == 0
    agreement = json.loads(capsys.readouterr().out)
    assert set(judges) <= set(agreement["annotators"]) and "alice" in agreement["annotators"]
    pairs = {(p["a"], p["b"]): p for p in agreement["pairs"]}
    # prompt sensitivity: each pair of templates of one judge is compared like two readers
    for i, a in enumerate(judges):
        for b in judges[i + 1:]:
            pair = pairs.get((a, b)) or pairs[(b, a)]
            assert pair["machine"] == [True, True] and "machine_vs_human" not in pair
    # and each template against the human
    vs = pairs.get(("alice", judges[1])) or pairs[(judges[1], "alice")]
    assert vs["machine_vs_human"]["machine"] == judges[1]
    assert vs["table"]["both_fell"] == 1  # s_a; s_c is the judge's skip, the control is no model's
    assert cli("calibration", "--study", str(st.path), "--json") == 0
    calibration = {a["annotator"]: a for a in json.loads(capsys.readouterr().out)["annotators"]}
    assert calibration[judges[0]]["machine"] is True
    assert calibration[judges[0]]["human_controls"] == {"read": 1, "false_falls": 1, "false_fall_rate": 1.0}
    assert calibration[judges[2]]["human_controls"] == {"read": 1, "false_falls": 0, "false_fall_rate": 0.0}
    assert cli("survival", "--study", str(st.path), "--annotator", judges[1], "--json", "-") == 0
    curves = json.loads(capsys.readouterr().out)
    assert SECRET_MODEL in json.dumps(curves) and curves["n"] == 2  # s_a, s_b (s_c is a skip; the control never counts)
    # machine and human curves never mix unless asked: the default is every human reader only
    assert cli("survival", "--study", str(st.path), "--json", "-") == 0
    human = json.loads(capsys.readouterr().out)
    assert human["n"] == 3 and human["filters"]["annotator"] == "all"


def _ident(base_url: str) -> Any:
    from lmread.backends.openai import OpenAIBackend

    return OpenAIBackend(base_url, "judge-model", concurrency=1)


def test_progress_bar_shows_answers_and_tokens() -> None:
    import io

    from lmread.cli.judge import JudgeProgressBar
    from lmread.judge.runner import JudgeProgress

    stream = io.StringIO()
    bar = JudgeProgressBar(stream, enabled=True)
    bar.update(JudgeProgress(0, 4, 0, 0, 0.0))
    bar.update(JudgeProgress(4, 4, 1200, 80, 8.0))
    bar.close()
    out = stream.getvalue()
    assert "0/4 answers" in out and "4/4 answers" in out and "tokens in 1200, out 80" in out
    assert "2.0 s/answer" in out and out.endswith("\n")
    quiet = io.StringIO()
    JudgeProgressBar(quiet, enabled=False).update(JudgeProgress(1, 2, 3, 4, 1.0))
    assert quiet.getvalue() == ""


def test_empty_sample_is_a_skip_without_asking(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st", [piece_sample("s_empty", []), piece_sample("s_space", ["  ", "\n"])])
    with scripted_chat_server(scripted) as server:
        engine = ChatServerJudge(ChatClient(server.base_url), _ident(server.base_url), "judge-model")
        report = run_judge(Study.open(st.path), engine, [SHIPPED["strict"]], JudgeSettings())
        assert server.posted("/v1/chat/completions") == []
    assert report.templates[0].skips == 2
    notes = {m["sample"]: m["note"] for m in marks_of(st.path, report.templates[0].annotator)}
    assert notes == {"s_empty": "judge: the sample has no text to judge", "s_space": "judge: the sample has no text to judge"}


def test_ctrl_c_keeps_answers_and_does_not_wait_for_slow_ones(tmp_path: Path) -> None:
    import _thread

    st = make_study(tmp_path / "st", samples())

    def slow(body: dict[str, Any]) -> Reply:
        if "river had risen" in body["messages"][-1]["content"]:
            time.sleep(15.0)
        return scripted(body)

    with scripted_chat_server(slow) as server:
        engine = ChatServerJudge(ChatClient(server.base_url, read_timeout_s=60), _ident(server.base_url),
                                 "judge-model", concurrency=2)
        timer = threading.Timer(2.0, _thread.interrupt_main)
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_judge(Study.open(st.path), engine, [SHIPPED["first-wrong"]], JudgeSettings())
        engine.close()  # as the command does: aborts the request in flight
        assert time.monotonic() - started < 10.0
    marked = {m["sample"] for m in marks_of(st.path, "auto-judge-judge-model-first-wrong")}
    assert "s_b" not in marked and marked >= {"s_a"}  # answers received are kept, the slow one is not guessed
