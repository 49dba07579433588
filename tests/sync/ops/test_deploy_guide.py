"""The deploy guide works as written: deploy/README.md, deploy/leadpilot.service, .env.example and
deploy/leadpilot-as-service agree with each other and with the settings (issue 15, item 6).

The unit, the guide's shell blocks and the env file are parsed the way systemd and a shell read
them; the helper script is run (``--print``) on the unit to show what the service's commands get.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from sync.config.settings import Settings
from sync.config.sources import secret_paths

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "leadpilot.service"
GUIDE = ROOT / "deploy" / "README.md"
SCRIPT = ROOT / "deploy" / "leadpilot-as-service"
EXAMPLE = ROOT / ".env.example"
# The one secret-bearing setting that is a path, not a SecretStr: the JWT flow's private key.
KEY_FILE_VAR = "LEADPILOT_SALESFORCE__AUTH__PRIVATE_KEY_FILE"


def _unit_lines(*, commented: bool = False) -> list[tuple[str, str]]:
    """``(key, value)`` of the unit's [Service] assignments; ``commented``: the ``#Key=`` ones instead."""
    out = []
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(#?)([A-Za-z]+)=(.*)$", line)
        if m and bool(m.group(1)) == commented:
            out.append((m.group(2), m.group(3)))
    return out


def _unit_env(lines: list[tuple[str, str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for k, v in lines if k == "Environment")


def _systemd_env_value(raw: str) -> str:
    """A value as systemd's EnvironmentFile= parser reads it (single-line subset of systemd.exec(5))."""
    raw = raw.strip()
    if raw[:1] == "'" and raw.endswith("'") and len(raw) > 1:
        return raw[1:-1]
    if raw[:1] == '"' and raw.endswith('"') and len(raw) > 1:
        return re.sub(r'\\(["\\`$])', r"\1", raw[1:-1])
    return re.sub(r"\\(.)", r"\1", raw)


def _env_file(path: Path, *, uncomment: bool = False) -> dict[str, str]:
    """Variables systemd passes from an EnvironmentFile (``uncomment``: as if every ``# LEADPILOT_`` line were active)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if uncomment:
            line = re.sub(r"^#\s*(?=LEADPILOT_[A-Z0-9_]+=)", "", line)
        if not line.strip() or line.lstrip().startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = _systemd_env_value(value)
    return out


def _shell(text: str) -> list[str]:
    """The guide's shell commands: the ```sh blocks, comments dropped, one command per line."""
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        cmds += [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    return cmds


def _secret_vars() -> list[str]:
    return sorted("LEADPILOT_" + "__".join(p.upper() for p in path) for path in secret_paths(Settings))


def _credential_pairs() -> dict[str, tuple[str, str]]:
    """Variable -> (credential id in its ``%d/<id>`` value, the source file of that id's LoadCredential=)."""
    lines = _unit_lines(commented=True) + _unit_lines()
    loads = dict(v.split(":", 1) for k, v in lines if k == "LoadCredential")
    out = {}
    for var, value in _unit_env(lines).items():
        m = re.fullmatch(r"%d/([\w.-]+)", value)
        if m:
            out[var] = (m.group(1), loads.get(m.group(1), ""))
    return out


# ---------------------------------------------------------------- the env file and the unit
def test_given_env_example_as_the_services_env_file_then_it_overrides_nothing_the_unit_sets() -> None:
    active = _env_file(EXAMPLE)
    unit_env = _unit_env(_unit_lines())
    # systemd: EnvironmentFile= overrides Environment=, so the file must not set what the unit does
    assert not set(active) & set(unit_env), set(active) & set(unit_env)
    assert set(active) == {"LEADPILOT_CRM"}  # only what the admin must set
    assert {"LEADPILOT_STATE_DIR", "LEADPILOT_ROUTING__FILE"} <= set(unit_env)
    for var in ("LEADPILOT_STATE_DIR", "LEADPILOT_ROUTING__FILE"):  # and the example says so
        assert re.search(rf"do NOT set {var.split('__')[0]}|{var}", EXAMPLE.read_text(encoding="utf-8"))


def test_given_the_example_cron_uncommented_when_systemd_reads_it_then_the_setting_is_valid(
        monkeypatch: pytest.MonkeyPatch) -> None:
    cron = _env_file(EXAMPLE, uncomment=True)["LEADPILOT_SCHEDULE__RETRAIN_CRON"]
    assert cron == "0 3 * * 0"
    monkeypatch.setenv("LEADPILOT_SCHEDULE__RETRAIN_CRON", cron)
    monkeypatch.setenv("LEADPILOT_CRM", _env_file(EXAMPLE)["LEADPILOT_CRM"])
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.schedule.retrain_cron == cron
    CronTrigger.from_crontab(settings.schedule.retrain_cron)


def test_every_secret_has_a_matching_credential_in_the_unit_the_guide_and_the_example() -> None:
    pairs = _credential_pairs()
    guide = GUIDE.read_text(encoding="utf-8")
    example = EXAMPLE.read_text(encoding="utf-8")
    for var in [*_secret_vars(), KEY_FILE_VAR]:
        file_var = var if var.endswith("_FILE") else f"{var}_FILE"
        assert file_var in pairs, f"the unit has no LoadCredential=/Environment={file_var}=%d/… pair"
        cred, source = pairs[file_var]
        assert source == f"/etc/leadpilot/credentials/{cred}", (file_var, cred, source)
        row = next((line for line in guide.splitlines() if line.startswith("|") and file_var in line), "")
        assert f"`{cred}`" in row, f"the guide's credentials table does not name {cred} for {file_var}"
        for m in re.finditer(rf"^#\s*{file_var}=(\S+)$", example, flags=re.M):
            assert m.group(1) == f"/run/credentials/leadpilot.service/{cred}", m.group(0)
    # every secret of the example's auth sections points at a credential the unit loads
    named = set(re.findall(r"/run/credentials/leadpilot\.service/([\w.-]+)", example))
    assert named <= {cred for cred, _ in pairs.values()}


def test_the_example_leads_with_todays_auth_flows() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    sf = text[text.index("---- Salesforce"):text.index("---- HubSpot")]
    hs = text[text.index("---- HubSpot"):]
    assert sf.index("External Client App") < sf.index("jwt ") < sf.index("client_credentials ") < sf.index("LEGACY")
    assert "password" in sf[sf.index("LEGACY") - 40:] and "My Domain" in sf
    assert re.search(r"^# LEADPILOT_SALESFORCE__AUTH__KIND=jwt$", sf, flags=re.M)
    assert hs.index("Service Key") < hs.index("legacy private-app token")


# ---------------------------------------------------------------- the guide's commands
def test_the_guides_commands_install_what_the_unit_reads_with_permissions_the_service_can_use() -> None:
    cmds = _shell(GUIDE.read_text(encoding="utf-8"))
    text = "\n".join(cmds)
    unit = dict(_unit_lines())
    env = _unit_env(_unit_lines())
    assert "xargs" not in text and "sudo -u nobody" not in text  # the old validation that could not work
    # /etc/leadpilot: traversable by the service's user; the env file and credentials root-only (systemd reads them)
    assert "install -d -m 0755 /etc/leadpilot" in text and "install -d -m 0700 /etc/leadpilot/credentials" in text
    assert f"install -m 0600 .env.example {unit['EnvironmentFile']}" in text
    assert f"install -m 0644 deploy/routing.example.toml {env['LEADPILOT_ROUTING__FILE']}" in text
    assert "install -m 0644 deploy/leadpilot.service /etc/systemd/system/leadpilot.service" in text
    assert env["LEADPILOT_STATE_DIR"] == f"/var/lib/{unit['StateDirectory']}"
    # validation, init-crm, status and report run as the service runs, after the unit is installed
    as_service = [c for c in cmds if "deploy/leadpilot-as-service" in c]
    first = next(i for i, c in enumerate(cmds) if "leadpilot-as-service check" in c)
    installed = next(i for i, c in enumerate(cmds) if "/etc/systemd/system/leadpilot.service" in c)
    assert installed < first < next(i for i, c in enumerate(cmds) if "systemctl enable --now leadpilot" in c)
    assert any(c.endswith("leadpilot-as-service init-crm") for c in as_service)
    guide = GUIDE.read_text(encoding="utf-8")
    assert re.search(r"leadpilot-as-service status`", guide)
    report = re.search(r"leadpilot-as-service report --out (\S+?)`", guide)
    assert report and report.group(1).startswith(env["LEADPILOT_STATE_DIR"] + "/")
    # no secret on a command line: the credential is read from stdin into a root-only file
    cred = next(c for c in cmds if "/etc/leadpilot/credentials/" in c and "cat >" in c)
    assert "umask 077" in cred


def test_the_guide_states_the_systemd_precedence_it_relies_on() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert "override" in guide and "EnvironmentFile=" in guide and "Environment=" in guide
    assert "never set them in `leadpilot.env`" in guide


# ---------------------------------------------------------------- deploy/leadpilot-as-service
def _with_all_credentials(tmp_path: Path) -> Path:
    text = re.sub(r"^#(LoadCredential|Environment)=", r"\1=", UNIT.read_text(encoding="utf-8"), flags=re.M)
    unit = tmp_path / "leadpilot.service"
    unit.write_text(text, encoding="utf-8")
    return unit


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_given_the_unit_when_as_service_prints_then_systemd_run_gets_the_units_user_settings_and_credentials(
        tmp_path: Path) -> None:
    unit = _with_all_credentials(tmp_path)
    res = subprocess.run(["bash", str(SCRIPT), "--print", "--unit", str(unit), "status", "--json"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30, check=True)
    argv = shlex.split(res.stdout)
    assert argv[:1] == ["systemd-run"] and {"--wait", "--pipe", "--collect"} <= set(argv)
    assert argv[-3:] == ["/opt/leadpilot/.venv/bin/leadpilot", "status", "--json"]
    props = [argv[i + 1] for i, a in enumerate(argv) if a == "-p"]
    assert "%d" not in " ".join(props)
    lines = [(k, v) for k, v in re.findall(r"^([A-Za-z]+)=(.*)$", unit.read_text(encoding="utf-8"), flags=re.M)]
    wanted = {"User", "DynamicUser", "StateDirectory", "EnvironmentFile", "Environment", "LoadCredential"}
    for key, value in lines:
        if key in wanted:
            assert f"{key}={value.replace('%d', '/run/credentials/leadpilot-cli.service')}" in props, (key, value)
    loaded = {p.split("=", 1)[1].split(":", 1)[0] for p in props if p.startswith("LoadCredential=")}
    for var, (cred, _) in _credential_pairs().items():
        assert f"Environment={var}=/run/credentials/leadpilot-cli.service/{cred}" in props and cred in loaded
    assert "--unit=leadpilot-cli" in argv and not any(p.startswith(("Restart", "Watchdog", "Type")) for p in props)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_given_no_installed_unit_when_as_service_runs_then_it_says_what_to_do(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(SCRIPT), "--unit", str(tmp_path / "missing.service"), "check"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert res.returncode == 2 and "install deploy/leadpilot.service first" in res.stderr
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_given_every_credential_pair_uncommented_when_systemd_analyze_verify_then_clean(tmp_path: Path) -> None:
    text = _with_all_credentials(tmp_path).read_text(encoding="utf-8")
    creds = tmp_path / "credentials"
    creds.mkdir()
    for cred, _ in _credential_pairs().values():
        (creds / cred).write_text("x", encoding="utf-8")
    env = tmp_path / "leadpilot.env"
    env.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    text = (text.replace("/opt/leadpilot/.venv/bin/leadpilot", str(Path(sys.executable)))
            .replace("/etc/leadpilot/leadpilot.env", str(env)).replace("/etc/leadpilot/credentials", str(creds)))
    target = tmp_path / "leadpilot.service"
    target.write_text(text, encoding="utf-8")
    res = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (res.stdout + res.stderr).splitlines() if "leadpilot.service" in line]
    assert res.returncode == 0 and not problems, res.stdout + res.stderr
