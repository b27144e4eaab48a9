#!/usr/bin/env bash
# Install the system tools the test suite needs (Debian/apt):
#   chromium + chromium-driver  (browser tests via Playwright executable_path)
#   wrk                          (HTTP load tests)
#   PostgreSQL server binaries   (initdb/pg_ctl for the throwaway test database)
#   a Java runtime               (Spark local mode)
#   nginx                        (the scale-out test's load balancer, started by the test itself)
#
# Idempotent and fast when everything is already present: presence is checked
# first and apt is only touched when something is missing (`apt-get update`
# runs at most once). If anything is still missing at the end (not root, no
# apt, an install failed), the script names it and exits 1: the suite needs
# every one of them (under CI=true a test whose component is missing fails).
set -euo pipefail

log() { printf 'install-system-deps: %s\n' "$*"; }
warn() { printf 'install-system-deps: WARNING: %s\n' "$*" >&2; }

# PostgreSQL's initdb/pg_ctl are not on PATH in Debian's packaging; they live
# in /usr/lib/postgresql/<version>/bin.
have_pg_server() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        return 0
    fi
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
            return 0
        fi
    done
    return 1
}

have_nginx() {
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]
}

have_chromium() {
    [[ -x /usr/bin/chromium ]] || command -v chromium >/dev/null 2>&1
}

have_chromedriver() {
    [[ -x /usr/bin/chromedriver ]] || command -v chromedriver >/dev/null 2>&1
}

missing_packages() {
    local -a pkgs=()
    have_chromium || pkgs+=(chromium)
    have_chromedriver || pkgs+=(chromium-driver)
    command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
    have_pg_server || pkgs+=(postgresql-15)
    command -v java >/dev/null 2>&1 || pkgs+=(default-jre-headless)
    have_nginx || pkgs+=(nginx)
    # runuser (util-linux) is needed to run the server as `postgres` when root.
    command -v runuser >/dev/null 2>&1 || pkgs+=(util-linux)
    if ((${#pkgs[@]})); then
        printf '%s\n' "${pkgs[@]}"
    fi
}

main() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        log "all system dependencies present (chromium, chromium-driver, wrk, postgresql server, java, nginx)"
        return 0
    fi
    log "missing: ${missing[*]}"

    if [[ "$(id -u)" -ne 0 ]]; then
        warn "not root; cannot install: ${missing[*]}"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        warn "apt-get not available; cannot install: ${missing[*]}"
        return 1
    fi

    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq; then
        warn "apt-get update failed; trying to install from the existing package lists"
    fi

    # postgresql-15 is Debian 12's version; fall back to the unversioned
    # metapackage on releases that ship a different major version.
    local -a to_install=()
    local pkg
    for pkg in "${missing[@]}"; do
        if [[ "$pkg" == postgresql-15 ]] && ! apt-cache show postgresql-15 >/dev/null 2>&1; then
            pkg=postgresql
        fi
        to_install+=("$pkg")
    done

    if ! apt-get install -y -qq --no-install-recommends "${to_install[@]}"; then
        # One bad package should not block the rest: retry them one by one.
        warn "bulk apt-get install failed; retrying packages individually"
        for pkg in "${to_install[@]}"; do
            apt-get install -y -qq --no-install-recommends "$pkg" || true
        done
    fi

    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]})); then
        warn "FAILED: still missing after apt-get install: ${missing[*]}"
        return 1
    fi
    log "installed: ${to_install[*]}"
    return 0
}

main "$@"
