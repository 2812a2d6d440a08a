#!/usr/bin/env bash
# Installs the .deb on this machine, checks what it installed, runs the unit
# under a real systemd, then purges it. For CI and throwaway machines only:
# it runs as root, creates the system user (kept after the purge, as on any
# Debian system) and installs/purges the package.
#
#   packaging/test-deb.sh path/to/gitlab-registry-cleaner_*.deb
#
# Steps:
#  1. dpkg -i; the user, file modes, conffiles, the unit not enabled; the
#     man page (`man -w` finds it, where man-db is installed) and the shell
#     completions;
#  2. `check` of the shipped config as the service user (the unit's
#     ExecStartPre=); systemd-analyze verify (must print nothing) and
#     security (exposure at most $MAX_EXPOSURE, i.e. 1.5 "OK");
#  3. the unit under systemd: systemd 252 booted in a container
#     (systemd-nspawn on a read-only view of this machine's root, /var and
#     /run on tmpfs), against the fake GitLab, with the token, config and URL
#     given by a runtime drop-in (nothing under /etc is touched): start
#     (Type=notify, a pass), reload, a refused reload, stop (exit 0). Skipped,
#     with a notice, when systemd-nspawn is missing or no container boots here;
#  4. dpkg --purge, and what it leaves.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:?usage: packaging/test-deb.sh PATH.deb}
deb=$(realpath "$deb")
NAME=gitlab-registry-cleaner
MAX_EXPOSURE=15 # systemd-analyze --threshold: exposure x 10
target_dir=${CARGO_TARGET_DIR:-target}

fail() {
    echo "test-deb: FAILED: $*" >&2
    exit 1
}
step() { echo "-- $*"; }

if [[ $(id -u) != 0 ]]; then
    fail "run as root (it installs and purges the package)"
fi
if dpkg-query -W -f '${Status}' "$NAME" 2>/dev/null | grep -q 'installed'; then
    if [[ ${CI:-} != true ]]; then
        fail "$NAME is already installed here; this test would purge it (and its token). dpkg --purge it first."
    fi
    echo "test-deb: $NAME is installed; purging it first (CI=true)"
    dpkg --purge "$NAME" >/dev/null
fi

container=
fake_pid=
temps=()
roots=()
cleanup() {
    if [[ -n $container ]]; then
        nsenter -t "$container" -a systemctl poweroff >/dev/null 2>&1 || kill "$container" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$container" 2>/dev/null || break; sleep 0.2; done
    fi
    [[ -n $fake_pid ]] && kill "$fake_pid" 2>/dev/null || true
    dpkg --purge "$NAME" >/dev/null 2>&1 || true
    if ((${#temps[@]})); then rm -f "${temps[@]}" 2>/dev/null || true; fi
    # The container's bind of / lived in its own mount namespace: here it is an
    # empty directory (rmdir, never rm -r).
    if ((${#roots[@]})); then rmdir "${roots[@]}" 2>/dev/null || true; fi
}
trap cleanup EXIT

step "dpkg -i $(basename "$deb")"
dpkg -i "$deb"

step "what was installed"
getent passwd "$NAME" | grep -q ":/nonexistent:/usr/sbin/nologin$" || fail "system user: $(getent passwd "$NAME")"
getent group "$NAME" >/dev/null || fail "no group $NAME"
mode() { stat -c '%a %U:%G' "$1"; }
[[ $(mode /etc/$NAME/env) == "640 root:$NAME" ]] || fail "env is $(mode /etc/$NAME/env)"
[[ $(mode /etc/$NAME/config.json) == "644 root:root" ]] || fail "config.json is $(mode /etc/$NAME/config.json)"
[[ $(mode /usr/bin/$NAME) == "755 root:root" ]] || fail "binary is $(mode /usr/bin/$NAME)"
[[ ! -e /etc/$NAME/token ]] || fail "the package must not ship a token"
conffiles=$(dpkg-query --control-show "$NAME" conffiles | sort | tr '\n' ' ')
[[ $conffiles == "/etc/$NAME/config.json /etc/$NAME/env " ]] || fail "conffiles: $conffiles"
[[ ! -e /etc/systemd/system/multi-user.target.wants/$NAME.service ]] || fail "the unit must not be enabled on install"
echo "user, group, modes, conffiles OK; unit installed, not enabled"
"/usr/bin/$NAME" --version

step "man page and shell completions"
for file in /usr/share/man/man1/$NAME.1.gz /usr/share/bash-completion/completions/$NAME \
    /usr/share/zsh/vendor-completions/_$NAME /usr/share/fish/vendor_completions.d/$NAME.fish; do
    [[ -s $file ]] || fail "missing: $file"
done
zcat /usr/share/man/man1/$NAME.1.gz | grep -q 'gitlab\\-registry\\-cleaner\\-apply' || fail "the man page does not name apply"
if command -v man >/dev/null; then
    [[ $(man -w "$NAME") == /usr/share/man/man1/$NAME.1.gz ]] || fail "man -w $NAME: $(man -w "$NAME" 2>&1)"
    echo "man -w $NAME: $(man -w "$NAME")"
fi
grep -q 'plan' /usr/share/bash-completion/completions/$NAME || fail "bash completion lacks plan"
echo "man page and completions installed"

step "ExecStartPre= check of the shipped config, as the service user"
(cd / && runuser -u "$NAME" -- env REPOSITORY_CONFIG_PATH=/etc/$NAME/config.json "/usr/bin/$NAME" check --daemon)

step "systemd-analyze verify"
unit=/usr/lib/systemd/system/$NAME.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "verify: $out"
[[ -z $out ]] || fail "verify printed: $out"
echo "clean"

step "systemd-analyze security (threshold $MAX_EXPOSURE)"
systemd-analyze security --offline=true --threshold=$MAX_EXPOSURE "$unit" | tail -n 1

step "the unit under systemd"
if ! command -v systemd-nspawn >/dev/null; then
    echo "NOTICE: systemd-nspawn missing (package systemd-container): unit not run under systemd"
else
    cargo build --quiet --locked -p fake-gitlab
    fake_log=$(mktemp)
    temps+=("$fake_log")
    "$target_dir/debug/fake-gitlab" --listen 127.0.0.1:0 >"$fake_log" 2>&1 &
    fake_pid=$!
    for _ in $(seq 50); do grep -q listening "$fake_log" && break; sleep 0.1; done
    url=$(grep -o 'http://[0-9.:]*' "$fake_log") || fail "fake GitLab did not start: $(cat "$fake_log")"
    echo "fake GitLab at $url"

    root=$(mktemp -d)
    boot_log=$(mktemp)
    temps+=("$boot_log")
    roots+=("$root")
    # A private mount namespace holds a read-only bind of / for the container.
    unshare -m --propagation private sh -c \
        "mount --bind / '$root' && mount -o remount,bind,ro '$root' &&
         exec systemd-nspawn -D '$root' --volatile=state --register=no --keep-unit \
              -M grc-test --boot -- systemd.unit=basic.target" >"$boot_log" 2>&1 &
    nspawn=$!
    booted=
    leader=
    for _ in $(seq 150); do
        # systemd-nspawn's child is the container's PID 1.
        [[ -z $leader ]] && leader=$(pgrep -P "$nspawn" -n systemd || true)
        if [[ -n $leader ]] && state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null); then
            [[ $state == running || $state == degraded ]] && { booted=1; break; }
        fi
        sleep 0.2
    done
    if [[ -z $booted ]]; then
        echo "NOTICE: no systemd container boots on this machine: unit not run under systemd"
        sed 's/^/  | /' "$boot_log" | tail -n 5
        kill $nspawn 2>/dev/null || true
    else
        container=$leader
        ct() { nsenter -t "$container" -a "$@"; }
        echo "systemd in a container: $(ct systemctl --version | head -n 1)"
        # Token, config and URL for this test, in the container's own /run.
        ct sh -ec "
            mkdir -p /run/grc-test /run/systemd/system/$NAME.service.d
            printf 'demo-token\n' > /run/grc-test/token; chmod 600 /run/grc-test/token
            cat > /run/grc-test/config.json <<'EOF'
{\"schedule\": \"0 3 * * *\", \"run_on_start\": true,
 \"projects\": {\"p1\": {\"id\": 1, \"delete_older_than\": {\"days\": 2}},
               \"p2\": {\"id\": 2, \"delete_older_than\": {\"minutes\": 30}}}}
EOF
            cat > /run/systemd/system/$NAME.service.d/test.conf <<'EOF'
[Service]
LoadCredential=
LoadCredential=token:/run/grc-test/token
Environment=REPOSITORY_CONFIG_PATH=/run/grc-test/config.json GITLAB_URL=$url
EOF
            systemctl daemon-reload"
        ct systemctl start "$NAME" || { ct journalctl -u "$NAME" --no-pager -n 20 -o cat; fail "systemctl start"; }
        status=
        for _ in $(seq 50); do
            status=$(ct systemctl show -p StatusText --value "$NAME")
            [[ $status == "last pass"* ]] && break
            sleep 0.2
        done
        echo "started; STATUS=$status"
        [[ $status == *"success"* ]] || { ct journalctl -u "$NAME" --no-pager -n 20 -o cat; fail "first pass: $status"; }
        ct journalctl -u "$NAME" --no-pager -o cat | grep -q '"operation":"pass_finished","result":"success"' \
            || fail "no successful pass_finished in the journal"
        [[ $(ct stat -c '%U %a' /var/log/$NAME) == "$NAME 750" ]] || fail "LogsDirectory: $(ct stat -c '%U %a' /var/log/$NAME)"

        ct systemctl reload "$NAME" || fail "reload of a valid config"
        # ExecReload= only sends SIGHUP: the daemon logs the reload a moment later.
        reloaded=
        for _ in $(seq 50); do
            ct journalctl -u "$NAME" --no-pager -o cat | grep -q '"operation":"config_reloaded"' && { reloaded=1; break; }
            sleep 0.2
        done
        [[ -n $reloaded ]] || { ct journalctl -u "$NAME" --no-pager -n 20 -o cat; fail "no config_reloaded"; }
        echo "reload: OK (config_reloaded)"
        ct sh -c 'echo "{\"projects\": {}, \"bogus\": 1}" > /run/grc-test/config.json'
        if ct systemctl reload "$NAME" 2>/dev/null; then fail "reload of a broken config succeeded"; fi
        [[ $(ct systemctl is-active "$NAME") == active ]] || fail "a refused reload stopped the service"
        echo "broken config: reload refused by ExecReload= check, service still active"

        ct systemctl stop "$NAME"
        result=$(ct systemctl show -p Result --value "$NAME")/$(ct systemctl show -p ExecMainStatus --value "$NAME")
        [[ $result == success/0 ]] || fail "stop: Result/ExecMainStatus = $result"
        echo "stop: Result=success, exit 0"
    fi
fi

step "dpkg --purge"
trap - EXIT
cleanup
container=
if dpkg-query -W "$NAME" >/dev/null 2>&1 && dpkg-query -W -f '${Status}' "$NAME" | grep -q installed; then
    fail "still installed after purge"
fi
[[ ! -e /etc/$NAME && ! -e /usr/bin/$NAME && ! -e $unit ]] || fail "purge left files"
echo "purged; the system user is kept: $(getent passwd "$NAME")"
echo "test-deb: OK"
