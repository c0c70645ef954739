"""One installer for the benchmarks' peers (Evidently for bench/drift.py, MLflow for bench/gate.py):
a virtualenv of their own, pip, a check run inside it, and a sentence saying why not when it is not
ready. Offline: the spec that fails is a path that does not exist, so pip fails without the network."""


from bench import _common, drift, gate


def test_quick_never_installs_and_says_so(tmp_path):
    venv = tmp_path / "peer-venv"
    why = _common.peer_venv_install(venv, ["anything"], check="import sys", quick=True)
    assert why == f"not installed in {venv} (--quick never installs; run once at full size)"
    assert not venv.exists()


def test_a_failed_install_says_why_and_a_ready_venv_is_reused(tmp_path):
    # given: a spec pip cannot install
    venv = tmp_path / "peer-venv"
    missing = tmp_path / "no-such-package"
    # when
    why = _common.peer_venv_install(venv, [str(missing)], check="import attest_no_such_module", quick=False)
    # then: the venv was made with this Python, pip's exit and its complaint are in the sentence
    assert why is not None and why.startswith("install failed (pip exit 1): ")
    assert str(missing) in why or "does not exist" in why
    assert (venv / "bin" / "python").exists()
    # and: a venv on which the check passes is ready as it stands (the failing spec is not tried again)
    assert _common.peer_venv_install(venv, [str(missing)], check="import json", quick=False) is None
    # and: a named executable that is missing makes it not ready
    assert not _common.peer_venv_ready(venv, "import json", executables=["mlflow"])


def test_both_benchmarks_use_the_shared_installer():
    assert "peer_venv_install" in vars(drift) and "peer_venv_install" in vars(gate)
    assert not hasattr(drift, "evidently_ready") and not hasattr(gate, "mlflow_ready")
