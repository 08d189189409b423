"""The bundle: wrangler.toml and src/ read into exactly what a version upload sends."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tgk_deploy.bundle import MODULE_CONTENT_TYPE, Bundle, read_bundle
from tgk_deploy.cli.app import app
from tgk_deploy.errors import ExitCode, SpecError

REPO = Path(__file__).resolve().parents[1]
WRANGLER = REPO / "wrangler"
FLAGS = ("AI_ANALYSIS", "DYNAMIC_ROUTING", "EMAIL_REPLIES", "EMAIL_REPLIES_PILOT")


def make_worker(folder: Path, toml: str, modules: dict[str, str] | None = None) -> Path:
    """A wrangler/ folder with ``toml`` and ES modules under src/."""
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "wrangler.toml").write_text(textwrap.dedent(toml))
    sources = modules or {
        "index.js": 'import { hello } from "./lib/hello.js";\nexport default { fetch() { return new Response(hello()); } };\n',
        "lib/hello.js": 'export const hello = () => "hi";\n',
    }
    for name, text in sources.items():
        (folder / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "src" / name).write_text(text)
    return folder


BASE = """
    name = "demo"
    main = "src/index.js"
    compatibility_date = "2024-09-23"
    compatibility_flags = ["nodejs_compat"]

    [version_metadata]
    binding = "CF_VERSION_METADATA"

    [vars]
    GREETING = "hello"
    LIMITS = { max = 3 }

    [[kv_namespaces]]
    binding = "ROUTING_KV"
    id = "0f2ac74b498b48028cb68387c421e279"

    [[d1_databases]]
    binding = "DB"
    database_name = "tgk-email-db"
    database_id = "5e8b5c8a-3b9d-4a44-9a8e-0d6b7f1a2c3d"

    [env.staging]
    compatibility_date = "2024-10-01"

    [env.staging.vars]
    GREETING = "hello staging"
"""


# ------------------------------------------------------------------ the real Worker


def test_production_is_the_top_level_of_the_real_wrangler_toml():
    bundle = read_bundle(WRANGLER, "production")
    assert bundle.script_name == "tgk-email-orchestrator"
    assert bundle.main_module == "index.js"
    assert bundle.modules[0].name == "index.js"
    on_disk = sorted(p.name for p in (WRANGLER / "src").glob("*.js"))
    assert sorted(m.name for m in bundle.modules) == on_disk
    for module in bundle.modules:
        assert module.content == (WRANGLER / "src" / module.name).read_bytes()
        assert module.content_type == MODULE_CONTENT_TYPE
    assert {"type": "version_metadata", "name": "CF_VERSION_METADATA"} in bundle.metadata()[
        "bindings"
    ]
    assert bundle.var("ENVIRONMENT") == "production"


def test_every_feature_flag_is_off_in_wrangler_toml_so_only_phase_files_turn_them_on():
    for environment in ("production", "staging"):
        bundle = read_bundle(WRANGLER, environment)
        assert {flag: bundle.var(flag) for flag in FLAGS} == dict.fromkeys(FLAGS, "false")


def test_staging_has_its_own_name_vars_and_routes_and_inherits_the_code_settings():
    production = read_bundle(WRANGLER, "production")
    staging = read_bundle(WRANGLER, "staging")
    assert staging.script_name == "tgk-email-orchestrator-staging"
    assert staging.var("ENVIRONMENT") == "staging"
    assert "staging" in staging.var("ROUTING_TABLE")
    assert staging.routes != production.routes
    assert staging.main_module == production.main_module
    assert staging.compatibility_date == production.compatibility_date
    assert [m.sha256 for m in staging.modules] == [m.sha256 for m in production.modules]
    assert staging.content_hash != production.content_hash


def test_no_secret_is_a_var():
    bundle = read_bundle(WRANGLER, "production")
    names = {b.name for b in bundle.bindings}
    assert not names & {"TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY", "REPLY_SIGNING_SECRET"}


# ------------------------------------------------------------------ wrangler's environment rules


def test_metadata_carries_vars_as_plain_text_json_vars_and_resource_bindings(tmp_path):
    bundle = read_bundle(make_worker(tmp_path, BASE), "production")
    assert bundle.metadata() == {
        "main_module": "index.js",
        "compatibility_date": "2024-09-23",
        "compatibility_flags": ["nodejs_compat"],
        "bindings": [
            {"type": "d1", "name": "DB", "id": "5e8b5c8a-3b9d-4a44-9a8e-0d6b7f1a2c3d"},
            {"type": "json", "name": "LIMITS", "json": {"max": 3}},
            {
                "type": "kv_namespace",
                "name": "ROUTING_KV",
                "namespace_id": "0f2ac74b498b48028cb68387c421e279",
            },
            {"type": "plain_text", "name": "GREETING", "text": "hello"},
            {"type": "version_metadata", "name": "CF_VERSION_METADATA"},
        ],
    }
    assert [m.name for m in bundle.modules] == ["index.js", "lib/hello.js"]


def test_an_environment_inherits_code_settings_but_not_bindings(tmp_path):
    staging = read_bundle(make_worker(tmp_path, BASE), "staging")
    assert staging.script_name == "demo-staging", (
        "wrangler names an unnamed environment <name>-<env>"
    )
    assert staging.compatibility_date == "2024-10-01"
    assert staging.compatibility_flags == ("nodejs_compat",)
    assert staging.main_module == "index.js"
    assert [(b.type, b.name) for b in staging.bindings] == [("plain_text", "GREETING")]
    assert staging.var("GREETING") == "hello staging"


def test_an_env_production_table_wins_over_the_top_level(tmp_path):
    toml = (
        BASE
        + '\n    [env.production]\n    name = "demo-prod"\n    [env.production.vars]\n    GREETING = "prod"\n'
    )
    production = read_bundle(make_worker(tmp_path, toml), "production")
    assert (production.script_name, production.var("GREETING")) == ("demo-prod", "prod")


# ------------------------------------------------------------------ the content hash


def test_the_hash_is_stable_across_reads_and_file_times(tmp_path):
    folder = make_worker(tmp_path, BASE)
    first = read_bundle(folder).content_hash
    (folder / "src" / "index.js").touch()
    assert read_bundle(folder).content_hash == first
    assert len(first) == 64


def test_the_hash_changes_with_any_module_byte_or_any_binding(tmp_path):
    folder = make_worker(tmp_path, BASE)
    before = read_bundle(folder).content_hash
    module = folder / "src" / "lib" / "hello.js"
    module.write_text(module.read_text().replace('"hi"', '"hi!"'))
    after_code = read_bundle(folder).content_hash
    toml = folder / "wrangler.toml"
    toml.write_text(toml.read_text().replace('GREETING = "hello"', 'GREETING = "hey"'))
    after_var = read_bundle(folder).content_hash
    assert len({before, after_code, after_var}) == 3


def test_with_vars_is_the_upload_a_phase_step_makes(tmp_path):
    folder = make_worker(tmp_path, BASE)
    flipped = read_bundle(folder).with_vars({"GREETING": "hey", "AI_ANALYSIS": "true"})
    toml = folder / "wrangler.toml"
    toml.write_text(
        toml.read_text().replace('GREETING = "hello"', 'GREETING = "hey"\n    AI_ANALYSIS = "true"')
    )
    assert flipped.content_hash == read_bundle(folder).content_hash
    assert isinstance(flipped, Bundle)


# ------------------------------------------------------------------ errors name the file, line and key


def _problem(error: pytest.ExceptionInfo[SpecError]) -> tuple[str, int, str, str]:
    [problem] = error.value.problems
    return problem.file, problem.line, problem.field, problem.message


def test_a_missing_compatibility_date_names_the_file_and_key(tmp_path):
    folder = make_worker(tmp_path, BASE.replace('compatibility_date = "2024-09-23"\n', ""))
    with pytest.raises(SpecError) as error:
        read_bundle(folder)
    file, _, field, message = _problem(error)
    assert (file, field, message) == (
        str(folder / "wrangler.toml"),
        "compatibility_date",
        "required",
    )
    assert error.value.exit_code == ExitCode.BAD_INPUT


def test_a_bad_value_is_located_at_its_line(tmp_path):
    folder = make_worker(tmp_path, BASE.replace('"2024-10-01"', '"October"'))
    with pytest.raises(SpecError) as error:
        read_bundle(folder, "staging")
    _, line, field, message = _problem(error)
    assert field == "env.staging.compatibility_date" and "YYYY-MM-DD" in message
    assert '"October"' in (folder / "wrangler.toml").read_text().splitlines()[line - 1]


def test_broken_toml_reports_its_line(tmp_path):
    folder = make_worker(tmp_path, BASE.replace('GREETING = "hello"', "GREETING = hello"))
    with pytest.raises(SpecError) as error:
        read_bundle(folder)
    _, line, _, message = _problem(error)
    assert "not TOML" in message
    assert "GREETING = hello" in (folder / "wrangler.toml").read_text().splitlines()[line - 1]


def test_an_unknown_environment_lists_the_known_ones(tmp_path):
    with pytest.raises(SpecError) as error:
        read_bundle(make_worker(tmp_path, BASE), "qa")
    _, _, field, message = _problem(error)
    assert field == "env.qa"
    assert "production, staging" in message


def test_a_var_that_looks_like_a_secret_is_refused(tmp_path):
    folder = make_worker(tmp_path, BASE.replace('GREETING = "hello"', 'OPENAI_API_KEY = "sk-live"'))
    with pytest.raises(SpecError) as error:
        read_bundle(folder)
    _, line, field, message = _problem(error)
    assert field == "vars.OPENAI_API_KEY" and "secret" in message
    assert "sk-live" not in str(error.value)
    lines = (folder / "wrangler.toml").read_text().splitlines()
    assert lines[line - 1].strip() == 'OPENAI_API_KEY = "sk-live"'


def test_a_binding_kind_the_bundle_cannot_upload_is_an_error_not_a_silent_drop(tmp_path):
    toml = BASE.replace(
        "[version_metadata]",
        '[[durable_objects.bindings]]\n    name = "X"\n    class_name = "X"\n\n    [version_metadata]',
    )
    with pytest.raises(SpecError) as error:
        read_bundle(make_worker(tmp_path, toml))
    assert _problem(error)[2] == "durable_objects"


def test_an_import_of_a_missing_module_is_caught_before_upload(tmp_path):
    folder = make_worker(
        tmp_path, BASE, {"index.js": 'import { x } from "./gone.js";\nexport default {};\n'}
    )
    with pytest.raises(SpecError) as error:
        read_bundle(folder)
    file, _, field, message = _problem(error)
    assert (Path(file).name, field) == ("index.js", "import")
    assert "./gone.js" in message


def test_a_missing_main_module_is_named(tmp_path):
    folder = make_worker(tmp_path, BASE.replace("src/index.js", "src/main.js"))
    with pytest.raises(SpecError) as error:
        read_bundle(folder)
    assert _problem(error)[2:] == ("main", "src/main.js does not exist")


# ------------------------------------------------------------------ the command


runner = CliRunner()


def test_bundle_command_prints_modules_bindings_and_hash(monkeypatch):
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["bundle"])
    assert result.exit_code == 0, result.output
    expected = read_bundle(WRANGLER, "production")
    assert "tgk-email-orchestrator (production)" in result.stdout
    assert "index.js" in result.stdout and "CF_VERSION_METADATA" in result.stdout
    assert f"sha256:{expected.content_hash}" in result.stdout


def test_bundle_command_json_for_staging(monkeypatch):
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["bundle", "--env", "staging", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = read_bundle(WRANGLER, "staging")
    assert data["script_name"] == "tgk-email-orchestrator-staging"
    assert data["content_hash"] == expected.content_hash
    assert [m["sha256"] for m in data["modules"]] == [m.sha256 for m in expected.modules]
    assert "content" not in data["modules"][0], "module bytes are not dumped"


def test_bundle_command_exits_2_on_a_bad_wrangler_toml(tmp_path, monkeypatch):
    make_worker(tmp_path / "wrangler", BASE.replace('main = "src/index.js"\n', ""))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bundle"])
    assert result.exit_code == 2
    assert "wrangler.toml" in result.stderr and "main" in result.stderr


def test_bundle_never_loads_the_cloudflare_sdk():
    import subprocess

    probe = (
        "import sys; from typer.testing import CliRunner; from tgk_deploy.cli.app import app;"
        "r = CliRunner().invoke(app, ['bundle']); assert r.exit_code == 0, r.output;"
        "print('cloudflare' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
