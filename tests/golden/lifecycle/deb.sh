# ---- mmpkg lifecycle library: mattermost 10.5.2 (deb) ----
# Written once for both package formats. Each maintainer script, rpm scriptlet and the
# administrator's command carries its own copy, because a script may run before any file of
# its package exists (preinst, %pre). Everything here must be idempotent.
#
# errexit is off inside any function called from `if`, `!`, `||` or `&&`, so only predicates
# (no side effects) and wrappers of a single command are called there; every other function
# runs as a plain command and checks its own steps (tests/test_shell.py holds the list).

MM_PACKAGE=mattermost
MM_VERSION=10.5.2
MM_USER=mattermost
MM_GROUP=mattermost
MM_PREFIX=/opt/mattermost
MM_ETC=/etc/mattermost
MM_CONFIG_DIR=/etc/mattermost/config
MM_SHARE=/usr/share/mattermost
MM_STATE=/var/lib/mattermost
MM_LOGS=/var/log/mattermost
MM_BACKUPS=/var/backups/mattermost
MM_UNIT=mattermost.service
MM_HAS_DB_MIGRATE=1
MM_HAS_DB_PING=0
# Set by mm_locate_config: the live config.json, and the directory the server writes it in.
MM_CONFIG="$MM_CONFIG_DIR/config.json"
MM_CONFIG_HOME=$MM_CONFIG_DIR
# A root-private copy of config.json as this run read it, once (mm_read_config).
MM_CONFIG_COPY=
MM_ETC_LOCKED_HERE=0
# Who runs this script, asked once (mm_is_root); never taken from the caller's environment.
MM_UID=
MM_ENV_FILE="$MM_ETC/mattermost.env"
# While a hand-made server is adopted: its environment, carried over (mm_handmade_environment).
MM_ENV_CARRIED=
MM_CARRIED=0
MM_PACKAGE_CONF="$MM_ETC/package.conf"
MM_OVERRIDES_DIR="$MM_ETC/overrides.d"
MM_PENDING="$MM_BACKUPS/pending"
MM_LAST_CONFIGURED="$MM_BACKUPS/last-configured-version"
# Written when the package is removed: whether the server was running then.
MM_REMOVED="$MM_BACKUPS/removed"
# dnf's versionlock plugin's list (dnf-plugins-core): where a rollback's hold is kept.
MM_VERSIONLOCK=/etc/dnf/plugins/versionlock.list
MM_MIGRATE_LOG="$MM_LOGS/package-upgrade.log"
MM_DBB_PLAN=off
MM_DBB_KIB=0
MM_TMP=
MM_CONF_OK=0
MM_LENIENT=0
# Globs sort overrides.d byte by byte, as docs/administering.md says, whatever the caller's locale.
LC_ALL=C
export LC_ALL

mm_say() { printf 'mattermost: %s\n' "$*"; }
mm_warn() { printf 'mattermost: warning: %s\n' "$*" >&2; }
mm_fail() {
    printf 'mattermost: error: %s\n' "$*" >&2
    exit 1
}

# When a script ends: its private directory goes, and a failed step gives back what it locked.
mm_on_exit() {
    mm_oe_rc=$?
    [ -z "$MM_TMP" ] || rm -rf "$MM_TMP"
    [ "$mm_oe_rc" = 0 ] || mm_unlock_etc
}
trap mm_on_exit EXIT

# A private directory for root's temporary files, removed when the script ends. Never a name
# in a directory the service user can write. Call it as a plain command, not in $(...).
mm_make_tmp() {
    [ -n "$MM_TMP" ] && return 0
    # The caller's TMPDIR reaches maintainer scripts, and may not exist where they run (a
    # chroot, another mount namespace): then the system's own is used.
    if [ -n "${TMPDIR:-}" ] && [ ! -d "$TMPDIR" ]; then
        unset TMPDIR
    fi
    MM_TMP=$(mktemp -d -t mattermost-pkg.XXXXXX) ||
        mm_fail "cannot create a temporary directory (mktemp -d); free some space in the temporary directory and try again"
}

# The last line of a command's error output, for a one-line message.
mm_last_line() {
    printf '%s\n' "$1" | sed '/^[[:space:]]*$/d' | tail -n 1
}

# ---- settings: the environment, then /etc/mattermost/package.conf, then the default ----
# unattended-upgrades, dnf-automatic and sudo drop the caller's environment, so the knobs that
# must hold for every upgrade live in package.conf. One-off switches (a downgrade, an upgrade
# upstream does not support, purging the data) are only read from the environment of the one
# command that needs them. Every value is checked before anything is changed.

# A value from package.conf, parsed like the environment file; only a file that root alone can
# write, in a directory root alone can write, is trusted.
mm_conf_trusted() {
    [ -e "$MM_PACKAGE_CONF" ] || [ -L "$MM_PACKAGE_CONF" ] || return 1
    mm_is_root || return 0
    if ! mm_root_file "$MM_PACKAGE_CONF"; then
        mm_warn "ignoring $MM_PACKAGE_CONF: only a regular file owned by root and writable by root alone is read"
        return 1
    fi
}

mm_conf_value() {
    [ "$MM_CONF_OK" = 1 ] || return 0
    mm_file_value "$MM_PACKAGE_CONF" "$1"
}

# A bad value: refused, or with MM_LENIENT=1 reported and replaced by the default ($2).
mm_bad_knob() {
    if [ "$MM_LENIENT" = 1 ]; then
        mm_warn "$1; using $2"
        printf '%s\n' "$2"
        exit 0
    fi
    mm_fail "$1"
}

# $1: name, $2: default, $3: count | seconds | jobs | switch | url, $4: persistent | once, as the table of
# settings (mmpkg/build/package_settings.py) gives them. Runs in $(...), so that a refusal ends
# the caller's assignment.
mm_knob() {
    if mm_kn_value=$(printenv "$1"); then
        mm_kn_where="the environment variable $1"
    elif [ "$4" = persistent ] && mm_kn_value=$(mm_conf_value "$1") && [ -n "$mm_kn_value" ]; then
        mm_kn_where="$1 in $MM_PACKAGE_CONF"
    else
        printf '%s\n' "$2"
        return 0
    fi
    case "$3" in
        count | seconds | jobs)
            case "$mm_kn_value" in
                '' | *[!0-9]* | ???????*)
                    mm_bad_knob "$mm_kn_where is '$mm_kn_value', not a whole number up to 999999 (for example $2); fix it and try again" "$2"
                    ;;
                *) ;;
            esac
            # Without leading zeros: dash and bash read 08 differently in arithmetic.
            mm_kn_value=${mm_kn_value#"${mm_kn_value%%[!0]*}"}
            mm_kn_value=${mm_kn_value:-0}
            if [ "$3" = count ] && [ "$mm_kn_value" -lt 1 ]; then
                mm_bad_knob "$mm_kn_where is $mm_kn_value; keep at least 1 snapshot, the one an upgrade in progress needs" "$2"
            fi
            ;;
        url)
            # It reaches curl as one argument: no glob of many ({a,b}, [1-9]), no spaces.
            case "$mm_kn_value" in
                http://?* | https://?*)
                    case "$mm_kn_value" in
                        *[!A-Za-z0-9._~:/?#@!\&\(\)*+,\;=%-]*)
                            mm_bad_knob "$mm_kn_where has characters a URL does not (spaces, quotes, braces, brackets); percent-encode them" "$2"
                            ;;
                        *) ;;
                    esac
                    ;;
                *) mm_bad_knob "$mm_kn_where is '$mm_kn_value', not an http:// or https:// URL" "$2" ;;
            esac
            ;;
        *)
            case "$mm_kn_value" in
                0 | 1) ;;
                *) mm_bad_knob "$mm_kn_where is '$mm_kn_value'; set it to 1 (on) or 0 (off)" "$2" ;;
            esac
            ;;
    esac
    printf '%s\n' "$mm_kn_value"
}

# $1: strict to refuse a bad value, lenient to warn and use the default instead.
mm_load_settings() {
    MM_LENIENT=0
    [ "${1:-}" = lenient ] && MM_LENIENT=1
    # Before root reads anything there: what the service user may have planted goes aside.
    mm_lock_etc
    mm_locate_config
    MM_CONF_OK=0
    if mm_conf_trusted; then
        MM_CONF_OK=1
        mm_check_conf_names
    fi
    MM_BACKUP_KEEP=$(mm_knob MMPKG_BACKUP_KEEP 5 count persistent)
    MM_START_TIMEOUT=$(mm_knob MMPKG_START_TIMEOUT 120 seconds persistent)
    MM_MANUAL_BACKUP_KEEP=$(mm_knob MMPKG_MANUAL_BACKUP_KEEP 10 count persistent)
    MM_DB_BACKUP=$(mm_knob MMPKG_DB_BACKUP 1 switch persistent)
    MM_DB_BACKUP_STRICT=$(mm_knob MMPKG_DB_BACKUP_STRICT 0 switch persistent)
    MM_DB_JOBS=$(mm_knob MMPKG_DB_JOBS 0 jobs persistent)
    MM_SELF_HEAL=$(mm_knob MMPKG_SELF_HEAL 1 switch persistent)
    MM_REPORT_URL=$(mm_knob MMPKG_REPORT_URL '' url persistent)
    MM_ALLOW_DOWNGRADE=$(mm_knob MMPKG_ALLOW_DOWNGRADE 0 switch once)
    MM_ALLOW_UNSUPPORTED_UPGRADE=$(mm_knob MMPKG_ALLOW_UNSUPPORTED_UPGRADE 0 switch once)
    MM_PURGE_DATA=$(mm_knob MMPKG_PURGE_DATA 0 switch once)
    MM_REQUIRE_DB_BACKUP=$(mm_knob MMPKG_REQUIRE_DB_BACKUP 0 switch once)
    MM_UNATTENDED=$(mm_knob MMPKG_UNATTENDED 0 switch once)
}

# A name package.conf does not know is a typo the administrator wants to hear about.
mm_check_conf_names() {
    mm_cn_text=$(mm_read_root_file "$MM_PACKAGE_CONF") || mm_cn_text=
    while IFS= read -r mm_cn_line || [ -n "$mm_cn_line" ]; do
        mm_cn_pair=$(mm_env_assignment "$mm_cn_line") || continue
        case "${mm_cn_pair%%=*}" in
            MMPKG_BACKUP_KEEP | MMPKG_START_TIMEOUT | MMPKG_MANUAL_BACKUP_KEEP | MMPKG_DB_BACKUP | MMPKG_DB_BACKUP_STRICT | MMPKG_DB_JOBS | MMPKG_SELF_HEAL | MMPKG_REPORT_URL) ;;
            MMPKG_ALLOW_DOWNGRADE | MMPKG_ALLOW_UNSUPPORTED_UPGRADE | MMPKG_PURGE_DATA | MMPKG_REQUIRE_DB_BACKUP | MMPKG_UNATTENDED)
                mm_warn "${mm_cn_pair%%=*} in $MM_PACKAGE_CONF is ignored: it is a one-off switch; set it in the environment of the one command that needs it"
                ;;
            *) mm_warn "$MM_PACKAGE_CONF sets ${mm_cn_pair%%=*}, which the package does not know; see mattermost-pkg(8)" ;;
        esac
    done <<EOF
$mm_cn_text
EOF
}
# ---- the privilege rule ----
# Root never creates, opens, follows, chowns or deletes a name inside a directory the service
# user can write, and never trusts a file there: the server runs third-party plugins, so its
# user may be hostile. $MM_ETC is root's alone; $MM_CONFIG_DIR, $MM_STATE and $MM_LOGS are the
# service user's, and root acts in them only as that user (mm_as_service). What root writes
# goes to a root-private place first and is renamed within root's own directories.

# Asked once a run: it is asked before most reads.
mm_is_root() {
    if [ -z "${MM_UID:-}" ]; then
        MM_UID=$(id -u)
    fi
    [ "$MM_UID" = 0 ]
}

# Nothing of the environment root was called with but PATH and the locale, in the subshell
# about to start a command as the service user: every process of that user's can read the
# environment of every other one (/proc/PID/environ), and what root's caller exported (a
# proxy's password, a token, PGPASSWORD) is none of its business.
mm_service_env() {
    for mm_se_name in $(export -p | sed -n 's/^export \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p'); do
        case "$mm_se_name" in PATH | LC_ALL) ;; *) unset "$mm_se_name" 2>/dev/null || true ;; esac
    done
}

# The last step of a subshell that mm_service_env cleaned: $@ as the service user, in a session
# of its own. In root's, the administrator's terminal would be its controlling terminal too,
# and it could push keystrokes into it (TIOCSTI) for root's shell to run once the scripts end.
mm_service_exec() {
    exec setsid -w runuser -u "$MM_USER" -- "$@"
}

# A command as the service user, from / (root's working directory may be anywhere).
mm_as_service() {
    (
        mm_service_env
        cd / && mm_service_exec "$@"
    )
}

# Whether directory $1 is a directory (not a link) that root owns and nobody else can write.
mm_root_only_dir() {
    { [ -d "$1" ] && [ ! -L "$1" ]; } || return 1
    mm_rd_meta=$(stat -c '%u:%a' "$1" 2>/dev/null) || return 1
    case "$mm_rd_meta" in 0:*) ;; *) return 1 ;; esac
    [ $((0${mm_rd_meta#*:} & 022)) -eq 0 ]
}

# Whether $1 is a regular file (not a link, one name only) that root owns and nobody else can
# write: what it holds, root wrote.
mm_root_owned_file() {
    { [ -f "$1" ] && [ ! -L "$1" ]; } || return 1
    mm_ro_meta=$(stat -c '%u:%h:%a' "$1" 2>/dev/null) || return 1
    case "$mm_ro_meta" in 0:1:*) ;; *) return 1 ;; esac
    [ $((0${mm_ro_meta##*:} & 022)) -eq 0 ]
}

# Whether $1 is a file root may trust: root's own file (mm_root_owned_file) in root-only
# directories, so that nobody else can change what the name points to either ($MM_ETC too for
# a file below it, such as overrides.d/*.json; a root-private temporary directory's own).
mm_root_file() {
    # A missing file first, without a process: most settings are read from no file at all.
    { [ -f "$1" ] && [ ! -L "$1" ]; } || return 1
    case "$1" in "$MM_ETC"/*) mm_root_only_dir "$MM_ETC" || return 1 ;; *) ;; esac
    mm_root_only_dir "${1%/*}" && mm_root_owned_file "$1"
}

# Whether nobody but root can change file $1 or what its path leads to: root's own file in
# directories that are root's alone all the way up to /. Such a file root may read itself.
mm_root_path() {
    case "$1" in /*) ;; *) return 1 ;; esac
    mm_root_owned_file "$1" || return 1
    mm_rp_dir=${1%/*}
    while [ -n "$mm_rp_dir" ]; do
        mm_root_only_dir "$mm_rp_dir" || return 1
        mm_rp_dir=${mm_rp_dir%/*}
    done
}

# Root's file $1 on stdout, or nothing when root cannot trust it; a user who is not root reads
# what it can (mattermost-pkg status).
mm_read_root_file() {
    if ! mm_is_root; then
        [ ! -r "$1" ] || cat -- "$1"
    elif mm_root_file "$1"; then
        cat -- "$1"
    fi
}

# The service user's file $1 on stdout, read as that user: a link there reaches only what the
# service user could read anyway. A FIFO gives nothing rather than hanging the read.
mm_read_service_file() {
    if mm_is_root; then
        mm_as_service dd if="$1" iflag=nonblock status=none
    else
        cat -- "$1"
    fi
}

# Move name $1 of a root-only directory into a root-private quarantine below $MM_BACKUPS,
# where nothing reads it; $2 says why. The administrator decides what becomes of it.
mm_quarantine() {
    mm_install_dir "$MM_BACKUPS" root root 0700
    mm_qu_dir="$MM_BACKUPS/quarantine"
    mm_install_dir "$mm_qu_dir" root root 0700
    mm_qu_to="$mm_qu_dir/$(date -u +%Y%m%dT%H%M%SZ)_${1##*/}"
    mm_qu_n=1
    while [ -e "$mm_qu_to" ] || [ -L "$mm_qu_to" ]; do
        mm_qu_to="$mm_qu_dir/$(date -u +%Y%m%dT%H%M%SZ)_${1##*/}.$mm_qu_n"
        mm_qu_n=$((mm_qu_n + 1))
    done
    mv -- "$1" "$mm_qu_to" || mm_fail "cannot move $1 out of the way into $mm_qu_dir"
    mm_warn "moved $1 to $mm_qu_to: $2"
}

# $MM_ETC becomes root's alone, and what the service user could have planted there before
# (links in place of root's files, a directory of its own as overrides.d) is moved aside. The
# server's files in it wait for mm_migrate_layout. Idempotent.
mm_lock_etc() {
    mm_is_root || return 0
    [ -e "$MM_ETC" ] || [ -L "$MM_ETC" ] || return 0
    if [ -L "$MM_ETC" ] || [ ! -d "$MM_ETC" ]; then
        mm_fail "$MM_ETC is not a directory (a link, or a file); make it a directory owned by root and try again"
    fi
    if ! mm_root_only_dir "$MM_ETC"; then
        # Only /etc names it, and only root can change /etc: no one can swap it meanwhile.
        { chown root:root "$MM_ETC" && chmod 0755 "$MM_ETC"; } ||
            mm_fail "cannot make $MM_ETC root's alone (chown root:root, chmod 0755)"
        MM_ETC_LOCKED_HERE=1
    fi
    for mm_le_name in mattermost.env package.conf; do
        for mm_le_file in "$MM_ETC/$mm_le_name" "$MM_ETC/$mm_le_name".dpkg-* "$MM_ETC/$mm_le_name".rpm*; do
            [ -e "$mm_le_file" ] || [ -L "$mm_le_file" ] || continue
            # Root's own file with loose permissions is only ignored when read (mm_root_file).
            mm_le_meta=$(stat -c '%F:%u:%h' "$mm_le_file")
            case "$mm_le_meta" in
                "regular file:0:1" | "regular empty file:0:1") ;;
                *) mm_quarantine "$mm_le_file" "only a regular file owned by root, writable by root alone, is read there" ;;
            esac
        done
    done
    if [ -e "$MM_OVERRIDES_DIR" ] || [ -L "$MM_OVERRIDES_DIR" ]; then
        mm_root_only_dir "$MM_OVERRIDES_DIR" ||
            mm_quarantine "$MM_OVERRIDES_DIR" "only a directory owned by root, writable by root alone, is read there"
    fi
    # Any other link: the package's own is the one to the server's config.json.
    for mm_le_file in "$MM_ETC"/* "$MM_ETC"/.[!.]*; do
        [ -L "$mm_le_file" ] || continue
        if [ "$mm_le_file" = "$MM_ETC/config.json" ]; then
            mm_le_target=$(readlink "$mm_le_file")
            [ "$mm_le_target" != "${MM_CONFIG_DIR##*/}/config.json" ] || continue
        fi
        mm_quarantine "$mm_le_file" "root follows no link in $MM_ETC"
    done
}

# Undo mm_lock_etc of this run when the step that needed it fails before anything else
# changed, while the configuration still lives in $MM_ETC itself (an older package's layout,
# whose server writes there).
mm_unlock_etc() {
    [ "${MM_ETC_LOCKED_HERE:-0}" = 1 ] || return 0
    { [ ! -e "$MM_CONFIG_DIR" ] && [ -f "$MM_ETC/config.json" ] && [ ! -L "$MM_ETC/config.json" ]; } || return 0
    { chown "root:$MM_GROUP" "$MM_ETC" && chmod 0770 "$MM_ETC"; } || true
    MM_ETC_LOCKED_HERE=0
}

# Where config.json is now: in $MM_CONFIG_DIR, or (an older package's layout, until
# mm_migrate_layout) in $MM_ETC itself.
mm_locate_config() {
    MM_CONFIG="$MM_CONFIG_DIR/config.json"
    if [ -f "$MM_ETC/config.json" ] && [ ! -L "$MM_ETC/config.json" ]; then
        MM_CONFIG="$MM_ETC/config.json"
    fi
    MM_CONFIG_HOME=${MM_CONFIG%/*}
}

# The server's files move from $MM_ETC into $MM_CONFIG_DIR, its own directory: made root-private
# first, filled by rename within root's directories, then handed to the service user. What is
# no plain file of the service user's (a link, a FIFO, a file with other names) is quarantined.
# An interrupted move goes on where it stopped (the directory is still root's).
mm_migrate_layout() {
    mm_lock_etc
    if [ "$MM_CONFIG" = "$MM_ETC/config.json" ] || mm_root_only_dir "$MM_CONFIG_DIR"; then
        mm_ml_uid=$(id -u "$MM_USER") || mm_fail "the user $MM_USER does not exist"
        if [ -L "$MM_CONFIG_DIR" ] || { [ -e "$MM_CONFIG_DIR" ] && [ ! -d "$MM_CONFIG_DIR" ]; }; then
            mm_quarantine "$MM_CONFIG_DIR" "it must be the server's configuration directory"
        fi
        # rpm makes the (empty) directory when it unpacks; it is root's until it is filled.
        if [ -d "$MM_CONFIG_DIR" ]; then
            chown root:root "$MM_CONFIG_DIR" && chmod 0700 "$MM_CONFIG_DIR"
        else
            mkdir -m 0700 "$MM_CONFIG_DIR"
        fi || mm_fail "cannot prepare $MM_CONFIG_DIR"
        for mm_ml_file in "$MM_ETC"/* "$MM_ETC"/.[!.]*; do
            case "${mm_ml_file##*/}" in
                mattermost.env* | package.conf* | overrides.d | "${MM_CONFIG_DIR##*/}") continue ;;
                *) ;;
            esac
            [ -e "$mm_ml_file" ] || [ -L "$mm_ml_file" ] || continue
            mm_ml_meta=$(stat -c '%F:%u:%h' "$mm_ml_file")
            case "$mm_ml_meta" in
                "regular file:$mm_ml_uid:1" | "regular empty file:$mm_ml_uid:1")
                    if [ -e "$MM_CONFIG_DIR/${mm_ml_file##*/}" ]; then
                        mm_fail "both $mm_ml_file and $MM_CONFIG_DIR/${mm_ml_file##*/} exist; keep the one you want and try again"
                    fi
                    mv -- "$mm_ml_file" "$MM_CONFIG_DIR/" || mm_fail "cannot move $mm_ml_file to $MM_CONFIG_DIR"
                    ;;
                *":0:"*) ;;
                *) mm_quarantine "$mm_ml_file" "the server's configuration directory takes plain files of $MM_USER's only" ;;
            esac
        done
        { chown "$MM_USER:$MM_GROUP" "$MM_CONFIG_DIR" && chmod 0750 "$MM_CONFIG_DIR"; } ||
            mm_fail "cannot give $MM_CONFIG_DIR to $MM_USER"
        mm_say "the server's configuration is in $MM_CONFIG_DIR; $MM_ETC is root's alone"
    fi
    if [ ! -e "$MM_ETC/config.json" ] && [ ! -L "$MM_ETC/config.json" ] && [ -d "$MM_ETC" ]; then
        # Where older packages kept it, for the administrator's habits and scripts.
        ln -s "${MM_CONFIG_DIR##*/}/config.json" "$MM_ETC/config.json"
    fi
    mm_locate_config
}

# Remove the service user's directory $1 with all below it. It becomes root's first (its name
# is in a directory of root's), so the service user can no longer change what rm walks.
mm_remove_service_tree() {
    [ -e "$1" ] || [ -L "$1" ] || return 0
    if [ -d "$1" ] && [ ! -L "$1" ]; then
        { chown root:root "$1" && chmod 0700 "$1"; } || true
    fi
    rm -rf -- "$1"
}

# The directory $1 of a tree the package takes over becomes root's: a link or something else
# in its place is quarantined. Its parent is root's already, so nobody can swap the name.
mm_lock_dir() {
    if [ -L "$1" ] || { [ -e "$1" ] && [ ! -d "$1" ]; }; then
        mm_quarantine "$1" "the release's directory must be a directory"
        return 0
    fi
    [ -d "$1" ] || return 0
    mm_root_only_dir "$1" && return 0
    { chown root:root "$1" && chmod go-w "$1"; } || mm_fail "cannot make $1 root's"
}

# A server installed by hand (as upstream's guide leaves it, the service user's to write):
# the release's directories become root's, parents first, then the plain files of the
# service user's in them. Directories the release does not have (the file store, plugins,
# logs) stay the server's, untouched.
mm_lock_release_tree() {
    mm_lock_dir "$MM_PREFIX"
    for mm_lt_dir in "$MM_PREFIX"; do
        { [ -d "$mm_lt_dir" ] && [ ! -L "$mm_lt_dir" ]; } || continue
        find "$mm_lt_dir" -mindepth 1 -maxdepth 1 -type f -user "$MM_USER" -links 1 \
            -exec chown root:root {} + -exec chmod go-w {} + ||
            mm_fail "cannot make the files in $mm_lt_dir root's"
    done
}
# ---- versions: X.Y.Z or X.Y.Z-rcN; a release candidate sorts before its release ----

# The numbers of version $1 into MM_VP_X, MM_VP_Y, MM_VP_Z and MM_VP_RC (999999 for a final
# release, which sorts after its candidates), without leading zeros, which printf and shell
# arithmetic would read as octal; false for anything that is not a version. It sets variables:
# call it as a plain command or in a condition, not in $(...).
mm_version_parts() {
    case "$1" in
        *-rc*) mm_vp_base=${1%%-rc*} MM_VP_RC=${1#*-rc} ;;
        *) mm_vp_base=$1 MM_VP_RC=999999 ;;
    esac
    case "$mm_vp_base" in *.*.*.* | *..* | .* | *.) return 1 ;; *.*.*) ;; *) return 1 ;; esac
    MM_VP_X=${mm_vp_base%%.*} mm_vp_rest=${mm_vp_base#*.}
    MM_VP_Y=${mm_vp_rest%%.*} MM_VP_Z=${mm_vp_rest#*.}
    for mm_vp_n in "$MM_VP_X" "$MM_VP_Y" "$MM_VP_Z" "$MM_VP_RC"; do
        # At most six digits, so that every key has the same length and no shell overflows.
        case "$mm_vp_n" in '' | *[!0-9]* | ???????*) return 1 ;; *) ;; esac
    done
    MM_VP_X=${MM_VP_X#"${MM_VP_X%%[!0]*}"} MM_VP_Y=${MM_VP_Y#"${MM_VP_Y%%[!0]*}"}
    MM_VP_Z=${MM_VP_Z#"${MM_VP_Z%%[!0]*}"} MM_VP_RC=${MM_VP_RC#"${MM_VP_RC%%[!0]*}"}
    MM_VP_X=${MM_VP_X:-0} MM_VP_Y=${MM_VP_Y:-0} MM_VP_Z=${MM_VP_Z:-0} MM_VP_RC=${MM_VP_RC:-0}
}

# The sortable key of a version, or false for anything that is not a version.
mm_version_key() {
    mm_version_parts "$1" || return 1
    printf '%06d%06d%06d%06d\n' "$MM_VP_X" "$MM_VP_Y" "$MM_VP_Z" "$MM_VP_RC"
}

mm_version_valid() { mm_version_key "$1" >/dev/null; }

# True when version $1 is older than version $2. Callers check both with mm_version_valid
# first; an unreadable version here ends the script rather than answer "not older".
mm_version_lt() {
    mm_vl_a=$(mm_version_key "$1") || mm_fail "cannot compare the versions '$1' and '$2'"
    mm_vl_b=$(mm_version_key "$2") || mm_fail "cannot compare the versions '$1' and '$2'"
    # expr says 0 (older), 1 (not older) or, for its own failure, more: never "not older".
    mm_vl_rc=0
    expr "x$mm_vl_a" \< "x$mm_vl_b" >/dev/null || mm_vl_rc=$?
    case "$mm_vl_rc" in
        0) return 0 ;;
        1) return 1 ;;
        *) mm_fail "cannot compare the versions '$1' and '$2' (expr failed with exit $mm_vl_rc)" ;;
    esac
}

# The upstream version installed now or, after a removal, the last one configured here: the
# database may already be at that version's schema. Empty when there has been none; what the
# file says otherwise, valid or not (the guard refuses what it cannot read).
mm_installed_version() {
    if [ -e "$MM_SHARE/version" ]; then
        mm_iv_file="$MM_SHARE/version"
    elif [ -e "$MM_LAST_CONFIGURED" ]; then
        mm_iv_file=$MM_LAST_CONFIGURED
    else
        return 0
    fi
    mm_iv=$(head -n 1 "$mm_iv_file" 2>/dev/null) || mm_iv=
    printf '%s\n' "${mm_iv:-unreadable}"
}
# ---- the environment file: read like systemd's EnvironmentFile=, never sourced ----
# Root reads it only when root alone can write it (mm_read_root_file), and never runs it as code.

# One line of the file as KEY=VALUE; false for blank lines, comments and lines that are not an
# assignment. As systemd does: whitespace around the key and the '=' is ignored, '#' and ';'
# start comments, one pair of quotes around the value is removed.
mm_env_assignment() {
    mm_ea_line=${1#"${1%%[![:space:]]*}"}
    mm_ea_line=${mm_ea_line%"${mm_ea_line##*[![:space:]]}"}
    case "$mm_ea_line" in '' | '#'* | ';'*) return 1 ;; *=*) ;; *) return 1 ;; esac
    mm_ea_key=${mm_ea_line%%=*}
    mm_ea_key=${mm_ea_key%"${mm_ea_key##*[![:space:]]}"}
    case "$mm_ea_key" in '' | [0-9]* | *[!A-Za-z0-9_]*) return 1 ;; *) ;; esac
    mm_ea_value=${mm_ea_line#*=}
    mm_ea_value=${mm_ea_value#"${mm_ea_value%%[![:space:]]*}"}
    mm_ea_value=$(mm_env_unquote "$mm_ea_value")
    printf '%s=%s' "$mm_ea_key" "$mm_ea_value"
}

# The last value file $1 assigns to $2 (empty when none), parsed as systemd parses it.
mm_file_value() {
    mm_fv_text=$(mm_read_root_file "$1") || mm_fv_text=
    mm_fv_value=
    while IFS= read -r mm_fv_line || [ -n "$mm_fv_line" ]; do
        if mm_fv_pair=$(mm_env_assignment "$mm_fv_line"); then
            case "$mm_fv_pair" in "$2="*) mm_fv_value=${mm_fv_pair#*=} ;; *) ;; esac
        fi
    done <<EOF
$mm_fv_text
EOF
    printf '%s' "$mm_fv_value"
}

# A variable of the environment file. While a hand-made server is adopted, what its own
# environment carries over (MM_ENV_CARRIED, mm_handmade_environment) wins: it is what the
# file will hold once the package is configured.
mm_env_value() {
    if [ -n "$MM_ENV_CARRIED" ]; then
        mm_ev_carried=$(mm_file_value "$MM_ENV_CARRIED" "$1")
        if [ -n "$mm_ev_carried" ]; then
            printf '%s' "$mm_ev_carried"
            return 0
        fi
    fi
    mm_file_value "$MM_ENV_FILE" "$1"
}

mm_env_unquote() {
    case "$1" in
        \"*\") mm_eu=${1#\"} && printf '%s' "${mm_eu%\"}" ;;
        \'*\') mm_eu=${1#\'} && printf '%s' "${mm_eu%\'}" ;;
        *) printf '%s' "$1" ;;
    esac
}

# Run a command as the service user from the install directory, with only the environment
# file's variables, the way the systemd unit runs the server. They reach it through a pipe and
# its own environment, never an argument (every local user can read those, and the file holds
# the database's password), and only once it runs as the service user: in root's runuser, a
# variable such as LD_PRELOAD would act as root. Its standard input is nothing of root's.
mm_run_as_service() {
    mm_rs_text=$(mm_read_root_file "$MM_ENV_FILE") || mm_rs_text=
    mm_rs_pairs=
    while IFS= read -r mm_rs_line || [ -n "$mm_rs_line" ]; do
        if mm_rs_pair=$(mm_env_assignment "$mm_rs_line"); then
            mm_rs_pairs="$mm_rs_pairs$mm_rs_pair
"
        fi
    done <<EOF
$mm_rs_text
EOF
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    printf '%s' "$mm_rs_pairs" | (
        mm_service_env
        cd "$MM_PREFIX" && mm_service_exec env -i \
            PATH=/usr/local/bin:/usr/bin:/bin HOME="$MM_STATE" LANG=C.UTF-8 sh -c '
            while IFS= read -r mm_pair; do export "$mm_pair"; done
            unset mm_pair
            exec "$@" </dev/null' mm-run "$@"
    )
}
# ---- JSON: jq, never sed ----

# Exactly one JSON object in file $1 (- for standard input): jq alone accepts an empty file,
# and several documents in a row.
mm_json_object() { jq -e -s 'length == 1 and (.[0] | type == "object")' "$1" >/dev/null 2>&1; }

# Refuse file $1 unless it is one JSON object. jq answers 1 for "not an object" and 2 for both
# a parse error and its own failure: only a parse error is the file's fault.
# mm_jo_name, when set, is the name to report for a private copy.
mm_require_json_object() {
    mm_jo_rc=0
    mm_jo_what=${mm_jo_name:-$1}
    mm_jo_err=$(jq -e -s 'length == 1 and (.[0] | type == "object")' "$1" 2>&1 >/dev/null) || mm_jo_rc=$?
    case "$mm_jo_rc" in
        0) return 0 ;;
        1) mm_fail "$mm_jo_what is not a JSON object (valid JSON, but not one object); $2" ;;
        *)
            mm_jo_err=$(mm_last_line "$mm_jo_err")
            case "$mm_jo_err" in
                *"parse error"*) mm_fail "$mm_jo_what is not a JSON object ($mm_jo_err); $2" ;;
                *) mm_fail "cannot check $mm_jo_what: jq failed with exit $mm_jo_rc (${mm_jo_err:-no message}); the file may be fine. Fix jq and try again" ;;
            esac
            ;;
    esac
}

# Before anything reads JSON: without jq every check would call valid files invalid.
mm_require_jq() {
    command -v jq >/dev/null 2>&1 || mm_fail "jq is not installed, and the package needs it to read $MM_CONFIG; install jq and try again"
}

# MM_CONFIG names a database: upstream keeps the configuration there (config.IsDatabaseDSN),
# and a config.json the server no longer reads may still be in $MM_CONFIG_DIR.
mm_config_in_database() {
    mm_cd_env=$(mm_env_value MM_CONFIG)
    case "$mm_cd_env" in postgres://* | postgresql://* | mysql://*) return 0 ;; *) return 1 ;; esac
}

# The active configuration of the database MM_CONFIG names, on stdout; nothing when it cannot
# be read (no psql, a MySQL store, the database down). Upstream's config store keeps it in the
# Value of the Configurations row that is Active (server/config/database.go, Load). Asked as
# the service user, as the server asks, the credentials in psql's environment only.
mm_read_database_config() {
    mm_rd_dsn=$(mm_env_value MM_CONFIG)
    command -v psql >/dev/null 2>&1 || return 0
    (
        mm_pg_parse_url "$mm_rd_dsn"
        [ "$MM_PG_OK" = 1 ] || exit 0
        mm_pg_run psql -X -A -t -q -w -c 'SELECT value FROM configurations WHERE active' 2>/dev/null || exit 0
    )
}

# A setting as the server will see it: the environment file wins over the configuration,
# config.json read as the service user, or the database's when MM_CONFIG names one.
mm_setting() {
    mm_st_name=$(printf 'MM_%s_%s' "$1" "$2" | tr '[:lower:]' '[:upper:]')
    mm_st_env=$(mm_env_value "$mm_st_name")
    if [ -n "$mm_st_env" ]; then
        printf '%s\n' "$mm_st_env"
    elif [ -n "$MM_CONFIG_COPY" ] && [ -f "$MM_CONFIG_COPY" ]; then
        # The copy this script read (mm_read_config, mm_check_config): one read, one answer for
        # the whole run. Not `// empty`, which would also drop false.
        jq -r --arg s "$1" --arg k "$2" '.[$s][$k] | if . == null then empty else . end' \
            "$MM_CONFIG_COPY" 2>/dev/null || true
    elif mm_config_in_database; then
        mm_read_database_config |
            jq -r --arg s "$1" --arg k "$2" '.[$s][$k] | if . == null then empty else . end' 2>/dev/null || true
    elif [ -e "$MM_CONFIG" ]; then
        mm_read_service_file "$MM_CONFIG" 2>/dev/null |
            jq -r --arg s "$1" --arg k "$2" '.[$s][$k] | if . == null then empty else . end' 2>/dev/null || true
    fi
}

mm_check_config() {
    if mm_config_in_database; then
        # What this run reads of it, once; an empty copy when it cannot be read, never the
        # config.json the server does not read.
        mm_make_tmp
        if [ "$MM_CONFIG_COPY" != "$MM_TMP/database.json" ]; then
            mm_read_database_config >"$MM_TMP/database.json"
            MM_CONFIG_COPY="$MM_TMP/database.json"
        fi
        return 0
    fi
    [ -e "$MM_CONFIG" ] || [ -L "$MM_CONFIG" ] || return 0
    mm_require_jq
    if [ -L "$MM_CONFIG" ]; then
        mm_fail "$MM_CONFIG is a symlink; make it a regular file owned by $MM_USER and try again"
    fi
    mm_make_tmp
    mm_read_config "$MM_TMP/live.json"
    if [ ! -s "$MM_TMP/live.json" ]; then
        mm_fail "$MM_CONFIG is empty; the server would reset every setting. Restore it from $MM_BACKUPS and try again"
    fi
    mm_jo_name=$MM_CONFIG
    mm_require_json_object "$MM_TMP/live.json" "fix it or restore it from $MM_BACKUPS and try again"
    mm_jo_name=
}

mm_check_overrides() {
    # Only *.json is read: an editor's backup or a package manager's .dpkg-old must not apply.
    for mm_co_other in "$MM_OVERRIDES_DIR"/* "$MM_OVERRIDES_DIR"/.[!.]*; do
        case "$mm_co_other" in
            *.json | */\* | */.\[!.\]\*) ;;
            *) mm_warn "ignoring $mm_co_other: only files named *.json in $MM_OVERRIDES_DIR are applied" ;;
        esac
    done
    for mm_co_file in "$MM_OVERRIDES_DIR"/*.json; do
        [ -e "$mm_co_file" ] || [ -L "$mm_co_file" ] || continue
        if mm_is_root && ! mm_root_file "$mm_co_file"; then
            mm_fail "$mm_co_file is not a regular file owned by root and writable by root alone (a link, or another owner's); only such files are applied. Replace it with one and try again"
        fi
        mm_require_jq
        mm_require_json_object "$mm_co_file" "fix or remove it and try again"
    done
}

# Warn of each overrides.d file that names a setting this release's config.json does not have
# (Section or Section.Key, as in $MM_SHARE/config.defaults.json): the server unmarshals
# config.json into its Config struct and writes back only what that has fields for (upstream
# server/config/utils.go), so such a key is dropped at its next start, and merged again by the
# next upgrade or apply-overrides. What lies below Section.Key (a plugin's settings in
# PluginSettings.Plugins) is the setting's own value and not checked.
mm_name_unknown_overrides() {
    [ -f "$MM_SHARE/config.defaults.json" ] || return 0
    for mm_nu_file in "$MM_OVERRIDES_DIR"/*.json; do
        [ -e "$mm_nu_file" ] || continue
        mm_nu_names=$(jq -r --slurpfile d "$MM_SHARE/config.defaults.json" '
            to_entries[] | .key as $s | ($d[0][$s]) as $known
            | if ($known | type) != "object" then $s
              elif (.value | type) == "object" then .value | keys_unsorted[] | select(. as $k | $known | has($k) | not) | "\($s).\(.)"
              else empty end' "$mm_nu_file" 2>/dev/null | paste -s -d ',' - | sed 's/,/, /g') || mm_nu_names=
        [ -z "$mm_nu_names" ] ||
            mm_warn "$mm_nu_file names $mm_nu_names, which Mattermost $MM_VERSION has no setting for: the server drops it from $MM_CONFIG whenever it starts"
    done
}

# Deep-merge the files given, then layer 2 (the build's overrides) and layer 3 (overrides.d/*.json
# in name order), later ones winning key by key, into file $1. The names go straight into jq's
# arguments, never through word splitting: an administrator's file name may hold anything.
mm_merge_into() {
    mm_mi_out=$1
    shift
    set -- "$@" "$MM_SHARE/overrides.json"
    for mm_mi_file in "$MM_OVERRIDES_DIR"/*.json; do
        if [ -e "$mm_mi_file" ]; then
            set -- "$@" "$mm_mi_file"
        fi
    done
    if ! mm_mi_err=$(jq --indent 4 -s 'reduce .[] as $layer ({}; . * $layer)' "$@" 2>&1 >"$mm_mi_out"); then
        mm_mi_err=$(mm_last_line "$mm_mi_err")
        mm_fail "cannot merge the configuration overrides into $mm_mi_out: $mm_mi_err"
    fi
}

# Put root-private file $1 in place as $MM_CONFIG. The directory is the service user's to
# write (the server replaces the file the same way), so the service user writes it: root never
# creates, changes or follows a name there. A file that exists keeps its mode.
mm_install_config() {
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    if ! mm_ic_err=$(mm_as_service sh -c '
        umask 077
        # A temporary copy an interrupted write left behind holds every secret: not kept.
        rm -f "$1"/.config.json.??????
        t=$(mktemp "$1/.config.json.XXXXXX") || exit 1
        if cat >"$t" && { [ ! -e "$2" ] || chmod --reference="$2" "$t"; } && mv -f "$t" "$2"; then
            exit 0
        fi
        rm -f "$t"
        exit 1' mm-config "$MM_CONFIG_HOME" "$MM_CONFIG" <"$1" 2>&1); then
        mm_ic_err=$(mm_last_line "$mm_ic_err")
        mm_fail "cannot write $MM_CONFIG: $mm_ic_err; free some space in $MM_CONFIG_HOME or fix its permissions, then run dpkg --configure -a"
    fi
    # What the file now holds, for the settings read later in this run.
    MM_CONFIG_COPY=$1
}

# Layer 1 (install defaults), then layers 2 and 3, into a new config.json.
mm_create_config() {
    mm_make_tmp
    mm_merge_into "$MM_TMP/config.json" "$MM_SHARE/config.defaults.json" "$MM_SHARE/install-defaults.json"
    mm_install_config "$MM_TMP/config.json"
    mm_say "created $MM_CONFIG"
}

# config.json as the service user reads it, into root-private file $1: a name in the service
# user's directory could point anywhere, and what root read there would be written back.
mm_read_config() {
    if ! mm_rc_err=$(mm_read_service_file "$MM_CONFIG" 2>&1 >"$1"); then
        mm_rc_err=$(mm_last_line "$mm_rc_err")
        mm_fail "cannot copy $MM_CONFIG (as $MM_USER) to $1: $mm_rc_err"
    fi
    MM_CONFIG_COPY=$1
}

# The live configuration with layers 2 and 3 merged over it, into $MM_TMP/merged.json; sets
# mm_co_changed to 1 when that differs from the live file.
mm_compute_overrides() {
    mm_make_tmp
    # mm_check_config has just read it, in this run.
    [ "$MM_CONFIG_COPY" = "$MM_TMP/live.json" ] || mm_read_config "$MM_TMP/live.json"
    mm_merge_into "$MM_TMP/merged.json" "$MM_TMP/live.json"
    mm_co_changed=1
    if jq -e -n --slurpfile a "$MM_TMP/live.json" --slurpfile b "$MM_TMP/merged.json" '$a == $b' >/dev/null; then
        mm_co_changed=0
    fi
}

# The overrides there are to apply, comma-separated: the build's (layer 2) when it set any,
# and every overrides.d/*.json (layer 3); nothing when there are none.
mm_overrides_present() {
    mm_op_list=
    if [ -f "$MM_SHARE/overrides.json" ] && jq -e 'length > 0' "$MM_SHARE/overrides.json" >/dev/null 2>&1; then
        mm_op_list="$MM_SHARE/overrides.json"
    fi
    for mm_op_file in "$MM_OVERRIDES_DIR"/*.json; do
        [ -e "$mm_op_file" ] || [ -L "$mm_op_file" ] || continue
        mm_op_list="${mm_op_list:+$mm_op_list, }$mm_op_file"
    done
    printf '%s' "$mm_op_list"
}

# With the configuration in the database, overrides are not applied, and that is said in one
# line ($1: mm_warn in the package's scripts, mm_fail for apply-overrides). Upstream offers no
# safe way to change it: the binary lost its 'config' commands to mmctl in 6.0
# (command-line-tools.rst), and 'mmctl --local config patch' needs a running server with local
# mode on, which the package neither needs nor turns on (it gives whoever runs as the service
# user the System Console's powers), and it would act after the start, not before it. Writing
# the Configurations row directly would skip the server's validation and the cache of every
# running node, which upstream warns against (configuration-in-your-database.rst), and one
# node's overrides.d would become every node's configuration. MM_* variables in the
# environment file do what overrides do: per node, locked in the System Console.
mm_overrides_in_database() {
    mm_od_list=$(mm_overrides_present)
    [ -n "$mm_od_list" ] || return 0
    "$1" "the configuration is in the database (MM_CONFIG in $MM_ENV_FILE) and overrides apply to config.json only: $mm_od_list not applied; set those settings as MM_* variables in $MM_ENV_FILE, or once with 'mmctl config patch'"
}

# Layers 2 and 3 over the live file, only while the server is stopped. Every key no layer names
# keeps its value; the file is only rewritten when something changes.
mm_apply_overrides() {
    if mm_config_in_database; then
        mm_check_config
        mm_overrides_in_database mm_warn
        return 0
    fi
    mm_check_config
    mm_check_overrides
    mm_name_unknown_overrides
    mm_compute_overrides
    [ "$mm_co_changed" = 1 ] || return 0
    mm_install_config "$MM_TMP/merged.json"
    mm_say "re-applied the configuration overrides to $MM_CONFIG"
}
# ---- user, directories, modes ----

mm_ensure_user() {
    if ! getent group "$MM_GROUP" >/dev/null; then
        mm_eu_err=$(groupadd --system "$MM_GROUP" 2>&1) ||
            mm_fail "cannot create the system group $MM_GROUP: $mm_eu_err (if it exists in a directory service, check that the system can look it up: getent group $MM_GROUP)"
    fi
    if ! getent passwd "$MM_USER" >/dev/null; then
        mm_eu_err=$(useradd --system --gid "$MM_GROUP" --home-dir "$MM_STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment "Mattermost server" "$MM_USER" 2>&1) ||
            mm_fail "cannot create the system user $MM_USER: $mm_eu_err (if it exists in a directory service, check that the system can look it up: getent passwd $MM_USER)"
    fi
}

# install -d DIR with owner $2, group $3 and mode $4, with one clear line when it cannot.
mm_install_dir() {
    if ! mm_id_err=$(install -d -o "$2" -g "$3" -m "$4" "$1" 2>&1); then
        mm_id_err=$(mm_last_line "$mm_id_err")
        mm_fail "cannot set up the directory $1: $mm_id_err"
    fi
}

mm_ensure_dirs() {
    # Before the directory becomes the service user's to write, so that root never changes a
    # name there: from then on dpkg unpacks the file as root:$MM_GROUP 0640 itself. The rpm
    # says so in %files.
    mm_register_env_file
    # Root's alone; the server's configuration has a directory of its own below it.
    mm_install_dir "$MM_ETC" root root 0755
    mm_install_dir "$MM_OVERRIDES_DIR" root root 0755
    mm_migrate_layout
    # Created once; an administrator's later choice of owner or mode is theirs.
    for mm_ed_dir in "$MM_CONFIG_DIR" "$MM_STATE" "$MM_LOGS"; do
        if [ ! -d "$mm_ed_dir" ]; then
            mm_install_dir "$mm_ed_dir" "$MM_USER" "$MM_GROUP" 0750
        fi
    done
    # Below the service user's own directory, made by that user.
    for mm_ed_dir in "$MM_STATE/data" "$MM_STATE/plugins" "$MM_STATE/client" "$MM_STATE/client/plugins"; do
        if ! mm_ed_err=$(mm_as_service mkdir -p -m 0750 "$mm_ed_dir" 2>&1); then
            mm_ed_err=$(mm_last_line "$mm_ed_err")
            mm_fail "cannot create $mm_ed_dir as $MM_USER: $mm_ed_err"
        fi
    done
    mm_install_dir "$MM_BACKUPS" root root 0700
    mm_register_rewritten
}

# With a SiteURL sub-path the server rewrites these release files in place (upstream's
# subpath.go), so its group must be able to write them. The rpm says so in %files. A .deb
# cannot: its data names no group made at install time, so dpkg-statoverride records
# root:$MM_GROUP 0664 in dpkg's database instead (Debian Policy 10.9.1, for dynamically
# allocated ids), and dpkg unpacks every later version of them so; a chgrp after each
# unpack would leave them unwritable until configure. An administrator's own override of one
# of them is kept. Records of files no longer in the release (upstream's stylesheet names
# change with every release) go; on purge, all of ours (mm_unregister_rewritten).
mm_rewritten_files() {
    printf '%s\n' "$MM_PREFIX"/client/root.html
    printf '%s\n' "$MM_PREFIX"/client/manifest.json
    printf '%s\n' "$MM_PREFIX"/client/main.0123456789abcdef0123.css
    :
}

# The environment file holds the database password: readable by the service's group only.
mm_register_env_file() {
    if ! dpkg-statoverride --list "$MM_ENV_FILE" >/dev/null; then
        dpkg-statoverride --update --add root "$MM_GROUP" 0640 "$MM_ENV_FILE"
    fi
}

mm_register_rewritten() {
    mm_rewritten_files | while IFS= read -r mm_rr_file; do
        if ! dpkg-statoverride --list "$mm_rr_file" >/dev/null; then
            dpkg-statoverride --update --add root "$MM_GROUP" 0664 "$mm_rr_file" ||
                mm_fail "dpkg-statoverride cannot record root:$MM_GROUP 0664 for $mm_rr_file"
        fi
    done
    # Read whole first: dpkg-statoverride holds dpkg's lock while it lists.
    mm_rr_ours=$(mm_our_overrides)
    printf '%s\n' "$mm_rr_ours" | while IFS= read -r mm_rr_file; do
        if [ -n "$mm_rr_file" ] && ! mm_rewritten_files | grep -Fqx -- "$mm_rr_file"; then
            dpkg-statoverride --remove "$mm_rr_file"
        fi
    done
}

# The records below the release that say root:$MM_GROUP 0664, this package's.
mm_our_overrides() {
    dpkg-statoverride --list "$MM_PREFIX/*" | while read -r mm_oo_owner mm_oo_group mm_oo_mode mm_oo_file; do
        if [ "$mm_oo_owner $mm_oo_group $mm_oo_mode" = "root $MM_GROUP 664" ]; then
            printf '%s\n' "$mm_oo_file"
        fi
    done
}

mm_unregister_rewritten() {
    mm_ur_ours=$(mm_our_overrides)
    printf '%s\n' "$mm_ur_ours" | while IFS= read -r mm_ur_file; do
        [ -z "$mm_ur_file" ] || dpkg-statoverride --remove "$mm_ur_file"
    done
    if dpkg-statoverride --list "$MM_ENV_FILE" >/dev/null; then
        dpkg-statoverride --remove "$MM_ENV_FILE"
    fi
}

# ---- the service ----

mm_systemd_running() { [ -d /run/systemd/system ]; }

mm_service_active() {
    mm_systemd_running && systemctl is-active --quiet "$MM_UNIT"
}

# Whether systemd knows the unit at all: a server installed by hand may run another way.
mm_unit_known() {
    mm_uk_state=$(systemctl show --property=LoadState --value "$MM_UNIT" 2>/dev/null) || return 1
    [ -n "$mm_uk_state" ] && [ "$mm_uk_state" != not-found ]
}

# In Debian's maintainer scripts, deb-systemd-invoke: it honours policy-rc.d and never starts
# a unit the administrator disabled.
mm_invoke() { deb-systemd-invoke "$@"; }

# True when the server is stopped (or no systemd runs it); the caller says what failed.
mm_service_stop() {
    mm_systemd_running || return 0
    mm_unit_known || return 0
    mm_invoke stop "$MM_UNIT"
}

mm_stop_or_fail() {
    if ! mm_service_stop; then
        mm_fail "cannot stop $MM_UNIT; see 'journalctl -u $MM_UNIT', stop it by hand and try again"
    fi
}

mm_daemon_reload() {
    mm_systemd_running || return 0
    systemctl daemon-reload || true
}

# The address the server answers on, from the environment file or config.json. ListenAddress
# is Go's host:port, either part optional, an IPv6 host in brackets.
mm_ping_url() {
    mm_pu_addr=$(mm_setting ServiceSettings ListenAddress)
    case "$mm_pu_addr" in
        \[*\]:*) mm_pu_host=${mm_pu_addr%]:*}] mm_pu_port=${mm_pu_addr##*]:} ;;
        \[*\]) mm_pu_host=$mm_pu_addr mm_pu_port= ;;
        *:*) mm_pu_host=${mm_pu_addr%:*} mm_pu_port=${mm_pu_addr##*:} ;;
        *) mm_pu_host=$mm_pu_addr mm_pu_port= ;;
    esac
    # The service user may have written it: root's curl gets one plain address (a name, an IPv4
    # or bracketed IPv6 address, a port number) or the default, never a glob of many (curl's
    # {a,b} and [1-9]) nor the parts of another URL.
    case "$mm_pu_host" in
        \[*\])
            mm_pu_inner=${mm_pu_host#\[}
            case "${mm_pu_inner%\]}" in '' | *[!0-9A-Fa-f:.]*) mm_pu_host= ;; *) ;; esac
            ;;
        *[!A-Za-z0-9.-]*) mm_pu_host= ;;
        *) ;;
    esac
    case "$mm_pu_port" in *[!0-9]* | ??????*) mm_pu_port= ;; *) ;; esac
    case "$mm_pu_host" in '' | 0.0.0.0) mm_pu_host=127.0.0.1 ;; '[::]') mm_pu_host='[::1]' ;; *) ;; esac
    mm_pu_scheme=http
    mm_pu_tls=$(mm_setting ServiceSettings ConnectionSecurity)
    [ "$mm_pu_tls" = TLS ] && mm_pu_scheme=https
    printf '%s://%s:%s/api/v4/system/ping\n' "$mm_pu_scheme" "$mm_pu_host" "${mm_pu_port:-8065}"
}

# Start the server and wait until it answers, up to MMPKG_START_TIMEOUT seconds in all; a server
# that does not come up is reported, but the package stays installed: its files are in place and
# `systemctl start` is the retry. Sets MM_START_RESULT: answered (MM_ANSWERED_AT: when, in
# seconds since the epoch), silent (no answer in time: still starting, or started and silent),
# failed (it stopped before it was ready), or none (not started: no systemd, a disabled unit,
# or MMPKG_START_TIMEOUT=0, which starts it without waiting for an answer).
mm_service_start() {
    MM_START_RESULT=none
    MM_ANSWERED_AT=
    mm_systemd_running || return 0
    mm_say "starting $MM_UNIT"
    mm_ss_rc=0
    if [ "$MM_START_TIMEOUT" = 0 ]; then
        mm_invoke start "$MM_UNIT" || mm_ss_rc=$?
    else
        mm_ss_now=$(date +%s)
        mm_ss_end=$((mm_ss_now + MM_START_TIMEOUT))
        # Type=notify: the start returns once the server said READY=1, for which TimeoutStartSec
        # allows an hour (a release that migrates as it starts). The wait here is bounded; the
        # start job goes on in systemd, and the server may still come up after it.
        timeout "$MM_START_TIMEOUT" deb-systemd-invoke start "$MM_UNIT" || mm_ss_rc=$?
    fi
    case "$mm_ss_rc" in
        0) ;;
        124)
            MM_START_RESULT=silent
            mm_warn "$MM_UNIT has not said it is ready after $MM_START_TIMEOUT seconds (MMPKG_START_TIMEOUT); see 'journalctl -u $MM_UNIT'"
            return 0
            ;;
        *)
            MM_START_RESULT=failed
            mm_warn "$MM_UNIT did not start; see 'journalctl -u $MM_UNIT'"
            return 0
            ;;
    esac
    if ! mm_service_active; then
        # deb-systemd-invoke never starts a disabled unit, even one started by hand before.
        mm_warn "$MM_UNIT is disabled, so it was not started again; run 'systemctl start $MM_UNIT'"
        return 0
    fi
    [ "$MM_START_TIMEOUT" != 0 ] || return 0
    mm_ss_url=$(mm_ping_url)
    while :; do
        if curl -gfsSk --max-time 2 -o /dev/null "$mm_ss_url" 2>/dev/null; then
            MM_START_RESULT=answered
            MM_ANSWERED_AT=$(date +%s.%N)
            mm_say "the server answers at $mm_ss_url"
            return 0
        fi
        mm_ss_now=$(date +%s)
        [ "$mm_ss_now" -lt "$mm_ss_end" ] || break
        sleep 1
    done
    MM_START_RESULT=silent
    mm_warn "$MM_UNIT started but does not answer at $mm_ss_url; see 'journalctl -u $MM_UNIT'"
}

# systemd's time (CLOCK_MONOTONIC, microseconds) of the unit's last start that the server
# reported ready: it changes when, and only when, a server of this unit became ready to serve.
mm_ready_mark() {
    mm_systemd_running || return 0
    mm_rm_mark=$(systemctl show --property=ActiveEnterTimestampMonotonic --value "$MM_UNIT" 2>/dev/null) || mm_rm_mark=
    printf '%s\n' "$mm_rm_mark"
}

# Debian tracks the administrator's enable/disable choice across upgrades and removal with
# deb-systemd-helper (as debhelper's postinst-systemd-enable does).
mm_unit_install() {
    deb-systemd-helper unmask "$MM_UNIT" >/dev/null || true
    # was-enabled is true on a first install, so a new install is enabled.
    if deb-systemd-helper --quiet was-enabled "$MM_UNIT"; then
        deb-systemd-helper enable "$MM_UNIT" >/dev/null || true
    else
        deb-systemd-helper update-state "$MM_UNIT" >/dev/null || true
    fi
    mm_daemon_reload
}

mm_unit_remove() {
    deb-systemd-helper mask "$MM_UNIT" >/dev/null || true
    mm_daemon_reload
}

mm_unit_purge() {
    deb-systemd-helper purge "$MM_UNIT" >/dev/null || true
    deb-systemd-helper unmask "$MM_UNIT" >/dev/null || true
}

# ---- upgrades: guard, stop, snapshot, and the pending record that lets a retry finish ----

mm_uses_mysql() {
    mm_um_env=$(mm_env_value MM_CONFIG)
    case "$mm_um_env" in mysql://*) return 0 ;; *) ;; esac
    mm_um_driver=$(mm_setting SqlSettings DriverName)
    [ "$mm_um_driver" = mysql ]
}

# An upgrade needs the configuration it upgrades: without it, the new server would start on
# upstream's defaults (another database, new salts).
mm_require_config() {
    mm_config_in_database && return 0
    [ -e "$MM_CONFIG" ] ||
        mm_fail "$MM_CONFIG is missing; restore it from $MM_BACKUPS and try again (to start over with a new configuration, remove the package first)"
}

# Refuse an upgrade from $1 to this version that upstream does not support, or that this
# version would refuse to start after. $1 is empty when no Mattermost was here before; anything
# else that is not a version is refused, since nothing can be said about a jump from a version
# nobody can read. $2 says where $1 came from.
mm_check_upgrade_path() {
    mm_cu_old=$1
    mm_cu_new=$MM_VERSION
    mm_check_config
    mm_check_overrides
    if mm_uses_mysql && ! mm_version_lt "$mm_cu_new" 11.0.0 && [ "$MM_ALLOW_UNSUPPORTED_UPGRADE" != 1 ]; then
        mm_fail "refusing to upgrade to $mm_cu_new: Mattermost 11 and later do not support MySQL (SqlSettings.DriverName or MM_CONFIG names mysql). Migrate the database to PostgreSQL first"
    fi
    mm_check_start_settings
    [ -n "$mm_cu_old" ] || return 0
    if ! mm_version_valid "$mm_cu_old"; then
        if [ "$MM_ALLOW_UNSUPPORTED_UPGRADE" = 1 ]; then
            mm_warn "cannot read the installed version ('$mm_cu_old' from ${2:-$MM_SHARE/version}); upgrading to $mm_cu_new anyway (MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1)"
            mm_check_database_version ''
            return 0
        fi
        mm_fail "refusing to upgrade to $mm_cu_new: cannot read the installed version ('$mm_cu_old' from ${2:-$MM_SHARE/version}), so the upgrade path cannot be checked. If you know it is supported, set MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1"
    fi
    if mm_version_lt "$mm_cu_new" "$mm_cu_old" && [ "$MM_ALLOW_DOWNGRADE" != 1 ]; then
        mm_fail "refusing to downgrade Mattermost from $mm_cu_old to $mm_cu_new: the database would be newer than the server. Roll the schema back with the newer binary ('mattermost db downgrade') and set MMPKG_ALLOW_DOWNGRADE=1"
    fi
    if [ "$MM_ALLOW_UNSUPPORTED_UPGRADE" != 1 ]; then
        mm_cu_why=$(mm_path_refusal "$mm_cu_old" "$mm_cu_new")
        [ -z "$mm_cu_why" ] || mm_fail "refusing to upgrade from $mm_cu_old to $mm_cu_new: $mm_cu_why"
    fi
    # Last: the only check that asks another machine.
    mm_check_database_version "$mm_cu_old"
}

# ---- what this release refuses at start (mmpkg/mattermost/start_refusals.py), before the server stops ----
# The new server would find out only once it replaced the old one, with the old one stopped.
# No switch skips these: the server refuses what they refuse whatever the package does.

# Go's strconv.ParseBool of $1, as the server reads an MM_* variable: true, false, or nothing
# for anything else (the server then ignores the variable).
mm_go_bool() {
    case "$1" in
        1 | t | T | TRUE | true | True) printf 'true\n' ;;
        0 | f | F | FALSE | false | False) printf 'false\n' ;;
        *) ;;
    esac
}

# The boolean setting $1.$2 as this release will start with it, and what sets it: "VALUE WHERE"
# (nothing when no layer gives it a boolean: the release's default). The environment file's
# variable $3 wins; then the last file of overrides.d that names it, and this package's own
# overrides ($4 is 1 when they name it, with a value the build checked); then config.json as
# this run read it (mm_read_config). With the configuration in the database, only the variable
# counts: the package merges no layer into that.
mm_start_setting() {
    mm_ss_env=$(mm_env_value "$3")
    mm_ss_value=$(mm_go_bool "$mm_ss_env")
    if [ -n "$mm_ss_value" ]; then
        printf '%s %s\n' "$mm_ss_value" "$MM_ENV_FILE ($3=$mm_ss_env)"
        return 0
    fi
    mm_config_in_database && return 0
    mm_ss_where=
    for mm_ss_file in "$MM_OVERRIDES_DIR"/*.json; do
        [ -f "$mm_ss_file" ] || continue
        mm_ss_found=$(jq -r --arg s "$1" --arg k "$2" '.[$s][$k] | if type == "boolean" then tostring else empty end' \
            "$mm_ss_file" 2>/dev/null) || mm_ss_found=
        if [ -n "$mm_ss_found" ]; then
            mm_ss_value=$mm_ss_found
            mm_ss_where=$mm_ss_file
        fi
    done
    if [ -n "$mm_ss_value" ]; then
        printf '%s %s\n' "$mm_ss_value" "$mm_ss_where"
        return 0
    fi
    [ "$4" != 1 ] || return 0
    [ -n "$MM_CONFIG_COPY" ] && [ -f "$MM_CONFIG_COPY" ] || return 0
    mm_ss_value=$(jq -r --arg s "$1" --arg k "$2" '.[$s][$k] | if type == "boolean" then tostring else empty end' \
        "$MM_CONFIG_COPY" 2>/dev/null) || mm_ss_value=
    [ -z "$mm_ss_value" ] || printf '%s %s\n' "$mm_ss_value" "$MM_CONFIG"
}

# Refuse the settings this release will not start with, wherever they are set.
mm_check_start_settings() {
    if ! mm_version_lt "$MM_VERSION" 11.0.0; then
        mm_sc_found=$(mm_start_setting TeamSettings ExperimentalViewArchivedChannels MM_TEAMSETTINGS_EXPERIMENTALVIEWARCHIVEDCHANNELS 0)
        if [ "${mm_sc_found%% *}" = false ]; then
            mm_fail "Mattermost $MM_VERSION will not start with TeamSettings.ExperimentalViewArchivedChannels=false, set by ${mm_sc_found#* }" '(upstream: "Hiding archived channels is no longer supported. Make these channels private and remove members instead."): set it to true there, or remove it, then try again; nothing was changed'
        fi
    fi
    if ! mm_version_lt "$MM_VERSION" 11.0.0; then
        mm_sc_found=$(mm_start_setting ExperimentalSettings ClientSideCertEnable MM_EXPERIMENTALSETTINGS_CLIENTSIDECERTENABLE 0)
        if [ "${mm_sc_found%% *}" = true ]; then
            mm_fail "Mattermost $MM_VERSION will not start with ExperimentalSettings.ClientSideCertEnable=true, set by ${mm_sc_found#* }" '(upstream: "Experimental certificate-based authentication feature has been removed."): set it to false there, or remove it, then try again; nothing was changed'
        fi
    fi
    :
}

# The oldest PostgreSQL (as server_version_num) Mattermost version $1 starts on; nothing when it
# checks none.
mm_pg_minimum() {
    if ! mm_version_lt "$1" 11.0.0; then
        printf '%s\n' 140000
        return 0
    fi
    if ! mm_version_lt "$1" 10.6.0; then
        printf '%s\n' 130000
        return 0
    fi
    if ! mm_version_lt "$1" 8.0.0; then
        printf '%s\n' 110000
        return 0
    fi
    if ! mm_version_lt "$1" 5.32.0; then
        printf '%s\n' 100000
        return 0
    fi
}

# server_version_num $1 as people write it: 130022 is 13.22, 90603 is 9.6.3.
mm_pg_version_name() {
    if [ "$1" -ge 100000 ]; then
        printf '%s.%s\n' "$(($1 / 10000))" "$(($1 % 10000))"
    else
        printf '%s.%s.%s\n' "$(($1 / 10000))" "$(($1 / 100 % 100))" "$(($1 % 100))"
    fi
}

# Refuse an upgrade from version $1 (empty: unknown) when the database server runs a PostgreSQL
# older than this release starts on. Asked only when this release wants a newer one than $1
# did: $1 ran on it. Asked as the service user, through the DataSource the server uses
# (mm_pg_run), with `SHOW server_version_num`, which upstream reads too. When it cannot be
# asked (no psql, a database that cannot be reached, another kind of DataSource), a warning
# says what to check and the upgrade goes on, as it does when the migration cannot reach the
# database.
mm_check_database_version() {
    mm_dv_need=$(mm_pg_minimum "$MM_VERSION")
    [ -n "$mm_dv_need" ] || return 0
    if [ -n "$1" ]; then
        mm_dv_had=$(mm_pg_minimum "$1")
        [ "${mm_dv_had:-0}" -lt "$mm_dv_need" ] || return 0
    fi
    mm_uses_mysql && return 0
    mm_dv_driver=$(mm_setting SqlSettings DriverName)
    [ "${mm_dv_driver:-postgres}" = postgres ] || return 0
    mm_dv_rule="Mattermost $MM_VERSION will not start on PostgreSQL older than $((mm_dv_need / 10000))"
    mm_dv_dsn=$(mm_db_dsn)
    mm_pg_parse_url "$mm_dv_dsn"
    mm_dv_at="the database server at ${MM_PG_HOST:-localhost}:${MM_PG_PORT:-5432}"
    mm_dv_why=
    mm_dv_num=
    mm_make_tmp
    if [ "$MM_PG_OK" != 1 ]; then
        mm_dv_at="the database server"
        mm_dv_why="SqlSettings.DataSource is not a postgres:// URL"
    elif ! command -v psql >/dev/null 2>&1; then
        mm_dv_why="psql is not installed; install postgresql-client"
    elif ! mm_dv_num=$(mm_pg_run timeout 30 psql -X -A -t -w -c 'SHOW server_version_num' 2>"$MM_TMP/pg-version.err" </dev/null); then
        # libpq follows its error with hints ("Is the server running ...?"): the error says why.
        mm_dv_err=$(cat "$MM_TMP/pg-version.err") || mm_dv_err=
        mm_dv_why=$(printf '%s\n' "$mm_dv_err" | sed -n 's/^psql: error: //p' | head -n 1)
        [ -n "$mm_dv_why" ] || mm_dv_why=$(mm_last_line "$mm_dv_err")
        mm_dv_why="psql cannot ask it: $mm_dv_why"
    else
        case "$mm_dv_num" in
            '' | *[!0-9]* | ????????*) mm_dv_why="it answered '$mm_dv_num' to SHOW server_version_num" ;;
            *) ;;
        esac
    fi
    if [ -n "$mm_dv_why" ]; then
        mm_warn "cannot tell which PostgreSQL $mm_dv_at runs ($mm_dv_why), and $mm_dv_rule: check it before the server starts"
        return 0
    fi
    if [ "$mm_dv_num" -lt "$mm_dv_need" ]; then
        mm_dv_name=$(mm_pg_version_name "$mm_dv_num")
        mm_fail "refusing to upgrade to $MM_VERSION: $mm_dv_at runs PostgreSQL $mm_dv_name, and $mm_dv_rule (upstream: \"minimum Postgres version requirements not met\"). Upgrade PostgreSQL first, then try again; nothing was changed"
    fi
}

# How many of upstream's ESR lines going from version $1 straight to version $2 passes over,
# and the first of them: "COUNT X.Y" ("0 " for none). A line is passed over when $1 is below its
# first release and $2 is on a later line (mmpkg/mattermost/upgrade_path.py, EsrPath). Both are valid.
# In arithmetic, with each line as X * 1000000 + Y: it runs for every pair a plan weighs.
mm_esr_passed() {
    mm_version_parts "$2" || mm_fail "cannot compare the versions '$1' and '$2'"
    mm_ep_new=$((MM_VP_X * 1000000 + MM_VP_Y))
    mm_version_parts "$1" || mm_fail "cannot compare the versions '$1' and '$2'"
    mm_ep_old=$((MM_VP_X * 1000000 + MM_VP_Y))
    # Whether $1 is its line's first release or later (a candidate of X.Y.0 is below it).
    mm_ep_started=0
    if [ "$MM_VP_Z" -gt 0 ] || [ "$MM_VP_RC" -eq 999999 ]; then
        mm_ep_started=1
    fi
    mm_ep_count=0
    mm_ep_first=
    for mm_ep_line in 4.10 5.9 5.19 5.25 5.31 5.37 6.3 7.1 7.8 8.1 9.5 9.11 10.5 10.11 11.7; do
        mm_ep_at=$((${mm_ep_line%.*} * 1000000 + ${mm_ep_line#*.}))
        # The lines are in order: once $2 is not past one, it is past none after it.
        [ "$mm_ep_at" -lt "$mm_ep_new" ] || break
        if [ "$mm_ep_old" -gt "$mm_ep_at" ] || { [ "$mm_ep_old" -eq "$mm_ep_at" ] && [ "$mm_ep_started" = 1 ]; }; then
            continue
        fi
        mm_ep_count=$((mm_ep_count + 1))
        [ -n "$mm_ep_first" ] || mm_ep_first=$mm_ep_line
    done
    printf '%s %s\n' "$mm_ep_count" "$mm_ep_first"
}

# Why upstream's supported upgrade path (mmpkg/mattermost/upgrade_path.py) forbids going from version $1
# straight to version $2 (what to do instead), or nothing when it allows it. Both are valid.
mm_path_refusal() {
    if mm_version_lt "$1" 5.37.0 && ! mm_version_lt "$2" 6.0.0; then
        printf '%s\n' 'upgrade to 5.37 (ESR) first'
        return 0
    fi
    if mm_version_lt "$1" 5.37.10 && ! mm_version_lt "$2" 7.0.0; then
        printf '%s\n' 'upgrade to 5.37.10 (ESR) first'
        return 0
    fi
    if mm_version_lt "$1" 7.1.0 && ! mm_version_lt "$2" 7.2.0; then
        printf '%s\n' 'upgrade to 7.1 (ESR) first'
        return 0
    fi
    if ! mm_version_lt "$1" 10.11.17 && mm_version_lt "$1" 10.12.0 &&
        ! mm_version_lt "$2" 11.0.0 && mm_version_lt "$2" 11.7.3; then
        printf '%s\n' 'upstream forbids 10.11.17+ to 11.0.0 and later below 11.7.3; choose 11.7.3 or later'
        return 0
    fi
    # Across one ESR is "supported, but not tested"; across more, not supported.
    mm_pr_passed=$(mm_esr_passed "$1" "$2")
    if [ "${mm_pr_passed%% *}" -gt 1 ]; then
        printf 'upgrade to %s (ESR) first\n' "${mm_pr_passed#* }"
    fi
}
# Before a first install (or a reinstall after removal): adopt a server installed by hand, and
# hold the same checks as an upgrade.
mm_before_install() {
    mm_refuse_omnibus_leftover
    if mm_handmade_install; then
        mm_adopt
    elif mm_leftover_install; then
        mm_adopt_leftover
    else
        # The other edition's files are still there while dpkg switches editions.
        if [ -e "$MM_SHARE/version" ]; then
            mm_require_config
        fi
        mm_bi_old=$(mm_installed_version)
        mm_check_upgrade_path "$mm_bi_old"
        if [ ! -e "$MM_SHARE/version" ] && [ -n "$mm_bi_old" ] && mm_earlier_state; then
            # What a removed install left (configuration, database, file store): this install
            # is an upgrade from the version that last configured it, with the same snapshot,
            # dump and migration, and the server starts again if it ran when it was removed.
            mm_say "found the configuration $mm_bi_old left; installing $MM_VERSION over it as an upgrade"
            MM_RAN_WHEN_REMOVED=0
            if [ -f "$MM_REMOVED" ] && grep -qx 'was_running=1' "$MM_REMOVED"; then
                MM_RAN_WHEN_REMOVED=1
            fi
            mm_prepare "$mm_bi_old" "$MM_VERSION"
        fi
    fi
}

# Whether an earlier install's configuration is here to upgrade: the server's config.json, or
# the database the environment file names.
mm_earlier_state() {
    mm_config_in_database || [ -e "$MM_CONFIG" ] || [ -L "$MM_CONFIG" ]
}

# A server set up by hand from the tarball, as upstream's guide does: config/ is a directory.
mm_handmade_install() {
    [ -d "$MM_PREFIX/config" ] && [ ! -L "$MM_PREFIX/config" ] && [ -e "$MM_PREFIX/bin/mattermost" ]
}

# What a removed server left in $MM_PREFIX: config/ a directory with its config.json, but no
# binary and none of this package's files. Mattermost's own deb leaves that on 'remove' (dpkg
# owns neither config.json nor the server's data), and its postrm deletes the service user.
mm_leftover_install() {
    [ -d "$MM_PREFIX/config" ] && [ ! -L "$MM_PREFIX/config" ] && [ -f "$MM_PREFIX/config/config.json" ] &&
        [ ! -e "$MM_PREFIX/bin/mattermost" ] && [ ! -L "$MM_PREFIX/bin/mattermost" ] && [ ! -e "$MM_SHARE/version" ]
}

# Adopt what a removed server left in $MM_PREFIX, as a hand-made install is adopted. No binary
# is left to tell the version the database was last migrated by, so the upgrade guard treats it
# as unknown: refused unless MMPKG_ALLOW_UNSUPPORTED_UPGRADE=1 says the jump is supported.
mm_adopt_leftover() {
    mm_say "adopting the configuration and data a removed Mattermost left in $MM_PREFIX (no server binary is left there)"
    mm_take_leftover_tree
    mm_adopt "" "$MM_PREFIX/config, which a removed server left without its binary; to start afresh instead, move $MM_PREFIX aside"
}

# The leftover tree's files are still those of the user that was deleted with its package:
# they become the service user's, whose uid may be another. $MM_PREFIX becomes root's first
# (its name is in /opt, root's), then each directory in it root's alone while chown walks it,
# so nobody else can change what is below; chown -R follows no link (-P) and changes links
# themselves (-h), and only what the old uid owned (--from). Then each is handed back.
mm_take_leftover_tree() {
    mm_tl_old=$(stat -c '%u' "$MM_PREFIX/config") || mm_fail "cannot read the owner of $MM_PREFIX/config"
    mm_tl_new=$(id -u "$MM_USER") || mm_fail "the user $MM_USER does not exist"
    { [ "$mm_tl_old" != 0 ] && [ "$mm_tl_old" != "$mm_tl_new" ]; } || return 0
    mm_lock_dir "$MM_PREFIX"
    for mm_tl_entry in "$MM_PREFIX"/* "$MM_PREFIX"/.[!.]*; do
        [ -e "$mm_tl_entry" ] || [ -L "$mm_tl_entry" ] || continue
        mm_tl_meta=$(stat -c '%F:%u:%a' "$mm_tl_entry") || mm_fail "cannot read $mm_tl_entry"
        case "$mm_tl_meta" in
            "directory:$mm_tl_old:"*)
                mm_tl_mode=${mm_tl_meta##*:}
                { chown root:root "$mm_tl_entry" && chmod 0700 "$mm_tl_entry" &&
                    chown -R -P -h --from="$mm_tl_old" "$MM_USER:$MM_GROUP" "$mm_tl_entry" &&
                    chown "$MM_USER:$MM_GROUP" "$mm_tl_entry" && chmod "$mm_tl_mode" "$mm_tl_entry"; } ||
                    mm_fail "cannot give $mm_tl_entry to $MM_USER"
                ;;
            *":$mm_tl_old:"*)
                chown -h "$MM_USER:$MM_GROUP" "$mm_tl_entry" || mm_fail "cannot give $mm_tl_entry to $MM_USER"
                ;;
            *) ;;
        esac
    done
    mm_say "gave the files of the former owner (uid $mm_tl_old) in $MM_PREFIX to $MM_USER"
}

# The version of a hand-made install: what 'mattermost version' prints. A release binary is
# built with -trimpath (upstream server/build/release.mk@02d2c6e9), so Go's build information has
# no -ldflags to read -X model.BuildNumber from (golang/go#52372); the value is only reachable
# through the ELF symbol table, which no tool these scripts may count on reads. From 6.5 on,
# 'version' prints the build and touches neither configuration nor database
# (mattermost/mattermost#19364); before, it started the whole server and migrated. So it is run
# only when the binary holds the help text of 'db migrate', which that same change added (a
# string in every later binary, commands/db.go@b1683404): as the service user (its own tree),
# from /, with nothing of root's environment, for at most 30 seconds. Prints its Build Number,
# or its Version when the build number is not a release's; nothing when it cannot be told.
mm_handmade_version() {
    mm_hv_bin="$MM_PREFIX/bin/mattermost"
    mm_read_service_file "$mm_hv_bin" 2>/dev/null |
        grep -a -q -F 'Migrate the database if there are any unapplied migrations' || return 0
    if mm_is_root; then
        mm_hv_out=$(mm_as_service timeout 30 "$mm_hv_bin" version 2>/dev/null </dev/null) || mm_hv_out=
    else
        mm_hv_out=$(cd / && timeout 30 "$mm_hv_bin" version 2>/dev/null </dev/null) || mm_hv_out=
    fi
    mm_hv_build=$(printf '%s\n' "$mm_hv_out" | sed -n 's/^Build Number: //p' | head -n 1)
    mm_hv_final=$(printf '%s\n' "$mm_hv_out" | sed -n 's/^Version: //p' | head -n 1)
    if mm_version_valid "$mm_hv_build"; then
        printf '%s\n' "$mm_hv_build"
    elif mm_version_valid "$mm_hv_final"; then
        printf '%s\n' "$mm_hv_final"
    fi
}

# A hand-made server may run without a unit (a shell, screen, another supervisor). Its
# configuration cannot move under it: it would write the old path back on its next save.
mm_refuse_unmanaged_server() {
    mm_service_active && return 0
    # No binary, no server of it (what a removed one left).
    [ -e "$MM_PREFIX/bin/mattermost" ] || return 0
    for mm_rs_cmd in /proc/[0-9]*/cmdline; do
        mm_rs_args=$(tr '\000' ' ' <"$mm_rs_cmd" 2>/dev/null) || continue
        case " $mm_rs_args" in
            *" $MM_PREFIX/bin/mattermost"*)
                mm_rs_pid=${mm_rs_cmd#/proc/}
                mm_rs_pid=${mm_rs_pid%/cmdline}
                # The same binary as ours, seen from the process's own root: not a server of
                # another container or chroot that happens to use the same path.
                mm_rs_theirs=$(stat -L -c '%d:%i' "/proc/$mm_rs_pid/root$MM_PREFIX/bin/mattermost" 2>/dev/null) ||
                    continue
                mm_rs_ours=$(stat -L -c '%d:%i' "$MM_PREFIX/bin/mattermost")
                if [ "$mm_rs_theirs" = "$mm_rs_ours" ]; then
                    mm_fail "a Mattermost server from $MM_PREFIX is running outside systemd (process $mm_rs_pid); stop it and try again"
                fi
                ;;
            *) ;;
        esac
    done
}

# The hand-made unit files, one a line, the one systemd reads first at the top, each file once
# (/lib is /usr/lib where /usr is merged). Upstream's tarball guide puts it in
# /etc/systemd/system (deploy-tar.rst), where it would shadow the package's unit; its older
# guides, its RHEL guide to this day (deploy-rhel.rst) and the unit its
# configuration-in-your-database.rst shows put it in /lib/systemd/system, where dpkg or rpm
# would overwrite it with the package's own without a copy.
mm_handmade_units() {
    mm_hu_seen=
    for mm_hu_dir in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
        mm_hu_unit="$mm_hu_dir/$MM_UNIT"
        { [ -f "$mm_hu_unit" ] && [ ! -L "$mm_hu_unit" ]; } || continue
        mm_hu_id=$(stat -c '%d:%i' "$mm_hu_unit") || continue
        case " $mm_hu_seen " in *" $mm_hu_id "*) continue ;; *) ;; esac
        mm_hu_seen="$mm_hu_seen $mm_hu_id"
        printf '%s\n' "$mm_hu_unit"
    done
}

# The hand-made units leave for snapshot $1, disabled first (the *.wants links, in
# $1/handmade-wants), each under a name of its own: handmade-$MM_UNIT for the one from
# /etc/systemd/system, handmade-lib-$MM_UNIT and so on for the others, with where it was in
# $1/handmade-units. Each move is said.
mm_save_handmade_units() {
    mm_su_list=$(mm_handmade_units)
    [ -n "$mm_su_list" ] || return 0
    for mm_su_link in /etc/systemd/system/*.wants/"$MM_UNIT"; do
        if [ -L "$mm_su_link" ]; then
            mm_su_target=$(readlink "$mm_su_link")
            printf '%s %s\n' "$mm_su_link" "$mm_su_target" >>"$1/handmade-wants" ||
                mm_fail "cannot record $mm_su_link in $1"
            rm -f "$mm_su_link"
        fi
    done
    while IFS= read -r mm_su_unit; do
        mm_su_where=${mm_su_unit%/systemd/system/*}
        mm_su_name="handmade$(printf '%s' "$mm_su_where" | tr / -)-$MM_UNIT"
        [ "$mm_su_where" != /etc ] || mm_su_name="handmade-$MM_UNIT"
        mv -- "$mm_su_unit" "$1/$mm_su_name" || mm_fail "cannot move $mm_su_unit to $1"
        printf '%s %s\n' "$mm_su_name" "$mm_su_unit" >>"$1/handmade-units" ||
            mm_fail "cannot record $mm_su_unit in $1"
        mm_say "moved the hand-made $mm_su_unit to $1/$mm_su_name"
    done <<EOF
$mm_su_list
EOF
}

# ---- the environment the hand-made unit gives its server ----
# Upstream's configuration-in-your-database.rst has the unit read MM_CONFIG (and other MM_*
# settings) from an EnvironmentFile=, config/mattermost.environment; the package's unit reads
# $MM_ENV_FILE instead, so what the hand-made server ran with is carried there.

# The values of setting $2 in the [Service] section of unit file $1, one a line, in order. A
# value that goes on over the next line (a trailing backslash) comes out as a lone backslash,
# which no value of these settings is.
mm_unit_values() {
    awk -v key="$2" '
        /^[ \t]*\[/ { section = $0; sub(/^[ \t]*\[/, "", section); sub(/\].*$/, "", section); next }
        section != "Service" { next }
        { line = $0; sub(/^[ \t]+/, "", line) }
        line ~ /^[#;]/ { next }
        {
            n = index(line, "="); if (n == 0) next
            k = substr(line, 1, n - 1); sub(/[ \t]+$/, "", k); if (k != key) next
            v = substr(line, n + 1); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
            if (v ~ /\\$/) v = "\\"
            print v
        }' "$1"
}

mm_he_refuse() {
    mm_fail "cannot carry the environment of the hand-made server over: $1. Change that (in $mm_he_unit or the file it names) and try again; nothing was changed"
}

# One line ($1) of an environment, from $2: an MM_* assignment goes into $MM_ENV_CARRIED as
# KEY=VALUE (quoted when the value has spaces), another name into mm_he_dropped. A line this
# parser would read otherwise than systemd does (quotes or a backslash inside a value, which
# may open a value that goes on over later lines) refuses: what it hides may be MM_CONFIG.
mm_he_take() {
    mm_ht_line=${1#"${1%%[![:space:]]*}"}
    case "$mm_ht_line" in '' | '#'* | ';'*) return 0 ;; *) ;; esac
    if ! mm_ht_pair=$(mm_env_assignment "$1"); then
        case "$1" in *[\"\'\\]*) mm_he_refuse "$2 is no assignment the package can read as systemd does" ;; *) return 0 ;; esac
    fi
    mm_ht_key=${mm_ht_pair%%=*}
    mm_ht_value=${mm_ht_pair#*=}
    case "$mm_ht_value" in
        *[\"\'\\]*) mm_he_refuse "$2 gives $mm_ht_key a value with a quote or a backslash inside, which the package cannot copy as systemd reads it" ;;
        *) ;;
    esac
    case "$mm_ht_key" in
        [Mm][Mm]_*) ;;
        *)
            case ", $mm_he_dropped, " in *", $mm_ht_key, "*) ;; *) mm_he_dropped="${mm_he_dropped:+$mm_he_dropped, }$mm_ht_key" ;; esac
            return 0
            ;;
    esac
    case "$mm_ht_value" in
        *[[:space:]]*) printf "%s='%s'\n" "$mm_ht_key" "$mm_ht_value" ;;
        *) printf '%s=%s\n' "$mm_ht_key" "$mm_ht_value" ;;
    esac >>"$MM_ENV_CARRIED" || mm_fail "cannot write $MM_ENV_CARRIED"
}

# Whether environment file $1 is there, as root sees a path nobody else can change
# (mm_root_path), else as the service user, whose file it may be: root follows no name there.
mm_he_present() {
    mm_root_path "$1" || mm_as_service test -e "$1" || mm_as_service test -L "$1"
}

# The text of environment file $1 on stdout: read by root where nobody else can change it,
# else as the service user. Refuses what cannot be read.
mm_he_read_file() {
    if mm_root_path "$1"; then
        cat -- "$1" || mm_he_refuse "$1 cannot be read"
    else
        mm_read_service_file "$1" 2>/dev/null || mm_he_refuse "$1 cannot be read as $MM_USER"
    fi
}

# The environment the unit file $1 gives its server, into root-private file $MM_TMP/handmade.env,
# which MM_ENV_CARRIED then names (so that mm_env_value reads it): its Environment= values,
# then its EnvironmentFile= files', which win, as in systemd. Only the server's own MM_*
# settings are carried: the package's ExecStartPre runs as root with the same environment,
# and the service user may have written that file (LD_PRELOAD, PATH). Any other name is said
# in one warning. The files carried from are listed in $MM_TMP/handmade-env-files.
mm_handmade_environment() {
    mm_he_unit=$1
    mm_make_tmp
    MM_ENV_CARRIED="$MM_TMP/handmade.env"
    { : >"$MM_ENV_CARRIED" && : >"$MM_TMP/handmade-env-files"; } || mm_fail "cannot write in $MM_TMP"
    mm_he_dropped=
    mm_he_words=
    mm_he_values=
    if [ -n "$mm_he_unit" ]; then
        mm_he_values=$(mm_unit_values "$mm_he_unit" Environment) || mm_fail "cannot read $mm_he_unit"
    fi
    while IFS= read -r mm_he_value; do
        case "$mm_he_value" in
            '') mm_he_words= ;;  # an empty assignment empties the list, as in systemd
            *[%\\]*) mm_he_refuse "Environment=$mm_he_value holds a specifier or a backslash" ;;
            *)
                # Words as systemd splits them, quotes and all; unmatched quotes fail.
                mm_he_split=$(printf '%s\n' "$mm_he_value" | xargs -n 1 printf '%s\n' 2>/dev/null) ||
                    mm_he_refuse "Environment=$mm_he_value has a quote that is not closed"
                mm_he_words="$mm_he_words$mm_he_split
"
                ;;
        esac
    done <<EOF
$mm_he_values
EOF
    if [ -n "$mm_he_words" ]; then
        printf '# from the Environment= of %s\n' "$mm_he_unit" >>"$MM_ENV_CARRIED"
        while IFS= read -r mm_he_word; do
            [ -z "$mm_he_word" ] || mm_he_take "$mm_he_word" "an Environment= of $mm_he_unit"
        done <<EOF
$mm_he_words
EOF
    fi
    if [ -n "$mm_he_unit" ]; then
        mm_he_values=$(mm_unit_values "$mm_he_unit" EnvironmentFile) || mm_fail "cannot read $mm_he_unit"
    fi
    # $2 comes last, as a drop-in's EnvironmentFile= would (a file already named is read once).
    if [ -n "${2:-}" ]; then
        mm_he_values="$mm_he_values
-$2"
    fi
    mm_he_files=
    while IFS= read -r mm_he_value; do
        case "$mm_he_value" in
            '') mm_he_files= ;;
            *) mm_he_files="$mm_he_files$mm_he_value
" ;;
        esac
    done <<EOF
$mm_he_values
EOF
    while IFS= read -r mm_he_file; do
        [ -n "$mm_he_file" ] || continue
        mm_he_need=required
        case "$mm_he_file" in -*) mm_he_need=optional mm_he_file=${mm_he_file#-} ;; *) ;; esac
        case "$mm_he_file" in
            *[%\\*?[]*) mm_he_refuse "EnvironmentFile=$mm_he_file holds a specifier, a backslash or a pattern" ;;
            /*) ;;
            *) mm_he_refuse "EnvironmentFile=$mm_he_file is not an absolute path" ;;
        esac
        ! grep -qxF -- "$mm_he_file" "$MM_TMP/handmade-env-files" || continue
        if ! mm_he_present "$mm_he_file"; then
            # systemd skips a missing file marked '-', and fails the unit for any other.
            [ "$mm_he_need" = optional ] || mm_he_refuse "$mm_he_file does not exist"
            continue
        fi
        mm_he_text=$(mm_he_read_file "$mm_he_file")
        printf '%s\n' "$mm_he_file" >>"$MM_TMP/handmade-env-files"
        printf '# from %s (EnvironmentFile= of %s)\n' "$mm_he_file" "$mm_he_unit" >>"$MM_ENV_CARRIED"
        mm_he_n=0
        while IFS= read -r mm_he_line || [ -n "$mm_he_line" ]; do
            mm_he_n=$((mm_he_n + 1))
            case "$mm_he_line" in *\\) mm_he_refuse "line $mm_he_n of $mm_he_file goes on over the next" ;; *) ;; esac
            mm_he_take "$mm_he_line" "line $mm_he_n of $mm_he_file"
        done <<EOF
$mm_he_text
EOF
    done <<EOF
$mm_he_files
EOF
    [ -z "$mm_he_dropped" ] ||
        mm_warn "not carried over from the hand-made server's environment: $mm_he_dropped (only MM_* settings go into $MM_ENV_FILE; give the server others with 'systemctl edit $MM_UNIT')"
    mm_he_config=$(mm_file_value "$MM_ENV_CARRIED" MM_CONFIG)
    case "$mm_he_config" in
        '' | postgres://* | postgresql://* | mysql://* | config.json | "$MM_PREFIX/config/config.json") ;;
        *) mm_fail "the hand-made server reads its configuration from $mm_he_config (MM_CONFIG in its unit's environment), where the package does not keep it: make that config.json, or put the configuration in the database, and try again; nothing was changed" ;;
    esac
}

# Drop-ins made for the hand-made unit apply to the package's unit too: said, not touched.
mm_warn_handmade_dropins() {
    for mm_wd_file in /etc/systemd/system/"$MM_UNIT".d/*.conf; do
        [ -e "$mm_wd_file" ] || continue
        mm_warn "$mm_wd_file, made for the hand-made server, applies to the package's $MM_UNIT as well; check it with 'systemctl cat $MM_UNIT'"
    done
}

# Take over a hand-made install. Upstream's guide leaves the whole tree the service user's to
# write; the package's release files are root's, so the release's directories become root's
# before dpkg or rpm writes into them. Its configuration directory (config.json, salts and all)
# becomes the server's directory $MM_CONFIG_DIR, where the package's $MM_PREFIX/config link
# will point; its data, plugins and logs stay wherever that configuration says, the service
# user's. Its units are disabled and kept in the snapshot (mm_save_handmade_units).
# $1: the version installed, when known without asking the binary; $2: why it is not known,
# when neither can tell it; $3: an environment file the server read beside its unit's (one
# mattermost-omnibus kept), carried too and then taken out of $MM_ETC.
mm_adopt() {
    mm_say "adopting the Mattermost server installed by hand in $MM_PREFIX"
    mm_ad_home="$MM_PREFIX/config"
    mm_ad_handmade="$mm_ad_home/config.json"
    mm_ad_unit=$(mm_handmade_units | head -n 1)
    mm_handmade_environment "$mm_ad_unit" "${3:-}"
    if [ ! -f "$mm_ad_handmade" ] && ! mm_config_in_database; then
        mm_fail "$MM_PREFIX holds a Mattermost installed by hand but no $mm_ad_handmade to adopt, and its unit's environment names no database for its configuration (MM_CONFIG); put it back, or move $MM_PREFIX aside, and try again"
    fi
    if [ -e "$MM_CONFIG" ] || [ -e "$MM_CONFIG_DIR" ]; then
        mm_fail "both $mm_ad_home and $MM_CONFIG_DIR hold a configuration; keep one of them and try again"
    fi
    # The same guard as an upgrade, on the hand-made configuration and the version it runs.
    MM_CONFIG=$mm_ad_handmade
    MM_CONFIG_HOME=$mm_ad_home
    # $1: the version when the package manager knows it (another package taken over).
    mm_ad_version=${1:-}
    [ -n "$mm_ad_version" ] || mm_ad_version=$(mm_handmade_version)
    mm_ad_source=${2:-}
    [ -n "$mm_ad_source" ] || mm_ad_source="'$MM_PREFIX/bin/mattermost version', which is not run for a release older than 6.5"
    mm_check_upgrade_path "${mm_ad_version:-unknown}" "$mm_ad_source"
    mm_refuse_unmanaged_server
    # The database backup reads the DataSource from the configuration that is still in use.
    mm_prepare handmade "$MM_VERSION"
    mm_ad_snap=$(readlink "$MM_PENDING")
    # For the configure step, which adds it to $MM_ENV_FILE once that is in place.
    if [ -s "$MM_ENV_CARRIED" ]; then
        cp -p "$MM_ENV_CARRIED" "$mm_ad_snap/handmade.env" || mm_fail "cannot save the hand-made server's environment in $mm_ad_snap"
    fi
    mm_lock_release_tree
    # Looked at again now that $MM_PREFIX is root's: until then its user could have put a link
    # in the directory's place, and chown, the copy and the move below would act on the target.
    if [ -L "$mm_ad_home" ] || [ ! -d "$mm_ad_home" ]; then
        mm_fail "$mm_ad_home is no longer a directory (a link, or something else, took its place while the server was being adopted); nothing was moved. Put the configuration directory back and try again"
    fi
    # Root's while it moves: nothing in it can change under root from here on.
    stat -c '%U:%G %a' "$mm_ad_home" >"$mm_ad_snap/handmade-config.owner"
    { chown root:root "$mm_ad_home" && chmod 0700 "$mm_ad_home"; } || mm_fail "cannot make $mm_ad_home root's"
    cp -a "$mm_ad_home" "$mm_ad_snap/handmade-config"
    mm_drop_carried_files "$mm_ad_home" "$mm_ad_snap/handmade-config"
    mm_install_dir "$MM_ETC" root root 0755
    mm_drop_omnibus_env "$mm_ad_snap" "${3:-}"
    mm_ad_uid=$(id -u "$MM_USER")
    for mm_ad_file in "$mm_ad_home"/* "$mm_ad_home"/.[!.]*; do
        [ -e "$mm_ad_file" ] || [ -L "$mm_ad_file" ] || continue
        mm_ad_meta=$(stat -c '%F:%u:%h' "$mm_ad_file")
        case "$mm_ad_meta" in
            "regular file:"*":1" | "regular empty file:"*":1") ;;
            *) mm_quarantine "$mm_ad_file" "the server's configuration directory takes plain files only" ;;
        esac
    done
    mv -T -- "$mm_ad_home" "$MM_CONFIG_DIR" || mm_fail "cannot move $mm_ad_home to $MM_CONFIG_DIR"
    { chown "$MM_USER:$MM_GROUP" "$MM_CONFIG_DIR" && chmod 0750 "$MM_CONFIG_DIR"; } ||
        mm_fail "cannot give $MM_CONFIG_DIR to $MM_USER"
    mm_locate_config
    mm_save_handmade_units "$mm_ad_snap"
    mm_warn_handmade_dropins
    mm_say "moved $mm_ad_home to $MM_CONFIG_DIR; the release's directories in $MM_PREFIX are root's now"
}

# The environment files carried from that lie at the top of configuration directory $1 (made
# root's alone, so that the names cannot change) leave it: the package's unit never reads
# them, and a copy that still looked in use would only mislead. Their copies are in $2.
mm_drop_carried_files() {
    [ -s "$MM_TMP/handmade-env-files" ] || return 0
    while IFS= read -r mm_dc_file; do
        case "${mm_dc_file#"$1"/}" in "$mm_dc_file" | */* | . | ..) continue ;; *) ;; esac
        [ -e "$mm_dc_file" ] || [ -L "$mm_dc_file" ] || continue
        rm -f -- "$mm_dc_file" || mm_fail "cannot take $mm_dc_file out of $1"
        mm_say "took $mm_dc_file out of the configuration directory: its MM_* settings go into $MM_ENV_FILE (a copy is in $2)"
    done <"$MM_TMP/handmade-env-files"
}

# After an adoption, once the package's $MM_ENV_FILE is in place: the hand-made server's
# environment, saved in the adoption's snapshot, is added at its end, once, so that the
# package's unit gives the server what the hand-made one did. Root's file, rewritten by rename
# in root's directory. Sets MM_CARRIED=1 when it added something.
mm_carry_handmade_env() {
    MM_CARRIED=0
    [ -L "$MM_PENDING" ] || return 0
    mm_ce_from=$(mm_pending_value from)
    [ "$mm_ce_from" = handmade ] || return 0
    mm_ce_snap=$(readlink "$MM_PENDING") || return 0
    [ -s "$mm_ce_snap/handmade.env" ] || return 0
    mm_ce_mark="# Carried over from the hand-made server's environment when the package adopted it:"
    # The package's own file comes first: written here before it, it would stand in for it.
    if [ ! -e "$MM_ENV_FILE" ] && [ ! -L "$MM_ENV_FILE" ]; then
        mm_fail "$MM_ENV_FILE is not in place yet, so the hand-made server's environment cannot go into it; finish the installation with dpkg --configure -a"
    fi
    mm_root_file "$MM_ENV_FILE" ||
        mm_fail "$MM_ENV_FILE is not a regular file owned by root and writable by root alone, so the hand-made server's environment ($mm_ce_snap/handmade.env) cannot be added to it; replace it with one and try again"
    ! grep -qxF "$mm_ce_mark" "$MM_ENV_FILE" || return 0
    mm_ce_tmp=$(mktemp "$MM_ETC/.mattermost.env.XXXXXX") || mm_fail "cannot write in $MM_ETC"
    if ! { cat -- "$MM_ENV_FILE" && printf '\n%s\n' "$mm_ce_mark" && cat -- "$mm_ce_snap/handmade.env"; } >"$mm_ce_tmp" ||
        ! chown "root:$MM_GROUP" "$mm_ce_tmp" || ! chmod 0640 "$mm_ce_tmp" || ! mv -f "$mm_ce_tmp" "$MM_ENV_FILE"; then
        rm -f "$mm_ce_tmp"
        mm_fail "cannot add the hand-made server's environment ($mm_ce_snap/handmade.env) to $MM_ENV_FILE; free some space in $MM_ETC and try again"
    fi
    MM_CARRIED=1
    mm_ce_names=$(sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' "$mm_ce_snap/handmade.env" | awk '!seen[$0]++' |
        paste -s -d ',' - | sed 's/,/, /g')
    mm_say "added the hand-made server's ${mm_ce_names:-environment} to $MM_ENV_FILE"
}

# The package could not be unpacked after mm_adopt ran (dpkg's postrm abort-install): put the
# hand-made installation back as it was, from the snapshot, and start it if it ran. Its release
# directories stay root's: the server writes none of them.
mm_abort_adoption() {
    [ -L "$MM_PENDING" ] || return 0
    mm_aa_from=$(mm_pending_value from)
    [ "$mm_aa_from" = handmade ] || return 0
    mm_aa_snap=$(readlink "$MM_PENDING")
    if [ ! -e "$MM_PREFIX/config" ] && [ -d "$mm_aa_snap/handmade-config" ]; then
        cp -a "$mm_aa_snap/handmade-config" "$MM_PREFIX/config"
        if [ -f "$mm_aa_snap/handmade-config.owner" ]; then
            mm_aa_meta=$(cat "$mm_aa_snap/handmade-config.owner")
            mm_aa_owner=${mm_aa_meta%% *} mm_aa_mode=${mm_aa_meta#* }
            { chown "$mm_aa_owner" "$MM_PREFIX/config" && chmod "$mm_aa_mode" "$MM_PREFIX/config"; } || true
        fi
        mm_remove_service_tree "$MM_CONFIG_DIR"
        rmdir "$MM_OVERRIDES_DIR" "$MM_ETC" 2>/dev/null || true
    fi
    mm_restore_handmade_units "$mm_aa_snap"
    mm_restore_omnibus_env "$mm_aa_snap"
    mm_aa_running=$(mm_pending_value was_running)
    rm -f "$MM_PENDING"
    mm_daemon_reload
    mm_warn "the package could not be installed; the hand-made installation in $MM_PREFIX is back as it was (copy in $mm_aa_snap)"
    if [ "$mm_aa_running" = 1 ]; then
        mm_service_start
    fi
}


# The units mm_save_handmade_units took into snapshot $1 go back where they were, enabled as
# they were. A file in one's place is not overwritten: the copy stays in $1, and that is said.
mm_restore_handmade_units() {
    [ -f "$1/handmade-units" ] || return 0
    while read -r mm_ru_name mm_ru_unit; do
        if [ -e "$mm_ru_unit" ] || [ -L "$mm_ru_unit" ]; then
            mm_warn "$mm_ru_unit is there again, so the hand-made one was not put back; it is in $1/$mm_ru_name"
        elif cp -a "$1/$mm_ru_name" "$mm_ru_unit"; then
            mm_say "put the hand-made $mm_ru_unit back"
        else
            mm_warn "cannot put the hand-made $mm_ru_unit back; it is in $1/$mm_ru_name"
        fi
    done <"$1/handmade-units"
    [ -f "$1/handmade-wants" ] || return 0
    while read -r mm_ru_link mm_ru_target; do
        { mkdir -p "${mm_ru_link%/*}" && ln -sfn "$mm_ru_target" "$mm_ru_link"; } ||
            mm_warn "cannot enable the hand-made unit again ($mm_ru_link)"
    done <"$1/handmade-wants"
}
# ---- taking over from Mattermost's own packages (deb.packages.mattermost.com) ----
# Mattermost's own deb is also called mattermost (version X.Y.Z-0, built by the Makefile of
# mattermost/mattermost-omnibus@7d8779a): the whole release in $MM_PREFIX, owned by the service
# user, config/ a directory holding config.json beside config.defaults.json, data, plugins and
# logs below $MM_PREFIX, its unit in /lib/systemd/system. dpkg upgrades it to this package
# like one of ours (preinst upgrade), so its server is taken over here the way a hand-made
# install is, before anything is unpacked: config/ must not be a directory when dpkg comes to
# put the package's link there (dpkg never replaces a directory by a link).

# Before the installed package of this name is upgraded to this one ($1: its version, when the
# package manager gives it): ours is upgraded, another's taken over. The one place both formats
# decide it (deb preinst upgrade, rpm %pre).
mm_before_upgrade_or_takeover() {
    if mm_installed_is_foreign; then
        mm_before_takeover "${1:-}"
    else
        mm_before_upgrade
    fi
}

# The installed package of this name is another's that keeps upstream's layout: none of ours
# is without $MM_SHARE/version, and none has config/ as a directory.
mm_installed_is_foreign() {
    [ ! -e "$MM_SHARE/version" ] && mm_handmade_install
}

# The upstream version of another package's version $1 (X.Y.Z-0, perhaps with an epoch);
# nothing when it is not one.
mm_foreign_version() {
    mm_fv=${1#*:}
    mm_fv=${mm_fv%-*}
    if mm_version_valid "$mm_fv"; then
        printf '%s\n' "$mm_fv"
    fi
}

# Before this package's files replace another's ($1: its version as the package manager gives
# it, or nothing): the same checks, snapshot and move as an adoption, for the version the
# package manager names rather than one read from the binary.
mm_before_takeover() {
    mm_bt_from=$(mm_foreign_version "${1:-}")
    mm_say "taking over the Mattermost server of the installed package ${MM_PACKAGE} ${1:-} (not one of this project's packages)"
    mm_check_omnibus
    if [ "$mm_omnibus" = 1 ]; then
        mm_warn "mattermost-omnibus set this server up: its nginx, PostgreSQL and certbot are left as they are, and so is its /etc/mattermost/mmomni.yml; the server's environment ($MM_OMNIBUS_ENV) goes into $MM_ENV_FILE"
        mm_adopt "$mm_bt_from" "" "$MM_OMNIBUS_ENV"
    else
        mm_adopt "$mm_bt_from"
    fi
}

# ---- mattermost-omnibus ----
# Mattermost's mattermost-omnibus (up to 10.12; mattermost/mattermost-omnibus@7d8779a) depends
# on exactly its own version of Mattermost's deb and sets nginx, PostgreSQL and certbot up
# around its server. It keeps the server's environment (MM_CONFIG naming the database that holds
# the configuration, the file store in /var/opt/mattermost/data, the logs in /var/log/mattermost)
# in $MM_OMNIBUS_ENV, root's, which the unit its `mmomni reconfigure` writes and its drop-in
# omnibus-overrides.conf both name (mmomni/ansible/playbooks/{mattermost.env,reconfigure.yml},
# mattermost/files/omnibus-overrides.conf). Its postrm purge deletes /etc/mattermost,
# /var/log/mattermost, /var/opt/mattermost and the mattermost user with its home $MM_PREFIX
# (mattermost-omnibus/DEBIAN/postrm): it must never run once this package holds the server, so
# this project's repository replaces it by a transitional package first (the .deb Breaks every
# older mattermost-omnibus), whose own scripts touch none of that.
MM_OMNIBUS_ENV=/etc/mattermost/mmomni.mattermost.env

# Sets mm_omnibus=1 when mattermost-omnibus set this server up. Refuses while upstream's
# mattermost-omnibus is still known to dpkg (installed, or removed with its configuration
# files), since its purge would then delete what this package keeps.
mm_check_omnibus() {
    mm_omnibus=0
    mm_co_state=$(dpkg-query -W -f '${Status} ${Version}' mattermost-omnibus 2>/dev/null) || mm_co_state=
    case "$mm_co_state" in
        '' | *" not-installed "*)
            [ -e /etc/mattermost/mmomni.yml ] || [ -e "$MM_OMNIBUS_ENV" ] || return 0
            ;;
        *-0)
            mm_fail "Mattermost's mattermost-omnibus ${mm_co_state##* } is still registered with dpkg, and its purge would delete /etc/mattermost, /var/log/mattermost, /var/opt/mattermost and the $MM_USER user with its home $MM_PREFIX: replace it first with this repository's transitional package (apt-get install mattermost-omnibus), then install this package again; nothing was changed"
            ;;
        *) ;;
    esac
    mm_omnibus=1
}

# Before a first install: a server mattermost-omnibus set up whose Mattermost deb is gone
# (removed, with its unit and its binary) is not one this package can take over: it knows the
# server only from that deb's files. Refused, rather than a new server that ignores it.
mm_refuse_omnibus_leftover() {
    mm_check_omnibus
    [ "$mm_omnibus" = 1 ] || return 0
    [ ! -e "$MM_PREFIX/bin/mattermost" ] || return 0
    mm_fail "$MM_OMNIBUS_ENV holds the settings of a server that mattermost-omnibus set up, and Mattermost's mattermost package, which this package takes such a server over from, is no longer installed: install that again (the version that was removed, from Mattermost's repository), then this package; to start afresh instead, move $MM_OMNIBUS_ENV aside"
}

# After an adoption that carried $MM_OMNIBUS_ENV ($2) into snapshot $1: the file leaves
# $MM_ETC, root's by now. Nothing reads it any more, and it holds the database password for
# anyone to read (omnibus writes it 0644).
mm_drop_omnibus_env() {
    [ -n "$2" ] && [ -f "$2" ] && [ ! -L "$2" ] || return 0
    mm_install_dir "$1/omnibus" root root 0700
    cp -p -- "$2" "$1/omnibus/" || mm_fail "cannot copy $2 to $1/omnibus"
    rm -f -- "$2" || mm_fail "cannot take $2 out of $MM_ETC"
    mm_say "took $2 out of $MM_ETC: its MM_* settings go into $MM_ENV_FILE (a copy is in $1/omnibus)"
}

# What mm_drop_omnibus_env took into snapshot $1 goes back, unless a file took its place.
mm_restore_omnibus_env() {
    [ -f "$1/omnibus/${MM_OMNIBUS_ENV##*/}" ] || return 0
    [ ! -e "$MM_OMNIBUS_ENV" ] && [ ! -L "$MM_OMNIBUS_ENV" ] || return 0
    cp -p -- "$1/omnibus/${MM_OMNIBUS_ENV##*/}" "$MM_OMNIBUS_ENV" ||
        mm_warn "cannot put $MM_OMNIBUS_ENV back; it is in $1/omnibus"
}
# ---- the database snapshot: pg_dump into the upgrade's snapshot, before any migration ----
# Installing an older binary never undoes a schema migration, so an upgrade that will migrate
# first dumps the server's database next to the configuration it saves. The credentials come
# from where the server reads them and reach psql and pg_dump only through their environment:
# never an argument (which every user can read in ps), never printed.

# $1 with its %XX escapes decoded, as Go's url.Parse decodes them; false for a bad escape or
# a NUL, which no connection parameter can hold.
mm_pct_decode() {
    mm_pd_in=$1
    mm_pd_out=
    while :; do
        case "$mm_pd_in" in *%*) ;; *) break ;; esac
        mm_pd_out=$mm_pd_out${mm_pd_in%%"%"*}
        mm_pd_in=${mm_pd_in#*"%"}
        mm_pd_hex=${mm_pd_in%"${mm_pd_in#??}"}
        case "$mm_pd_hex" in 00 | '') return 1 ;; [0-9A-Fa-f][0-9A-Fa-f]) ;; *) return 1 ;; esac
        mm_pd_in=${mm_pd_in#??}
        mm_pd_oct=$(printf '%03o' "0x$mm_pd_hex")
        # The x keeps a decoded newline from being cut off by $(...).
        mm_pd_char=$(printf '%b' "\\0${mm_pd_oct}x")
        mm_pd_out=$mm_pd_out${mm_pd_char%x}
    done
    printf '%s' "$mm_pd_out$mm_pd_in"
}

# Read the postgres:// URL $1 the way lib/pq does, into MM_PG_HOST, MM_PG_PORT, MM_PG_USER,
# MM_PG_PASSWORD, MM_PG_DB, MM_PG_SSLMODE and MM_PG_TIMEOUT (empty: libpq's default). Sets
# MM_PG_OK=1 for such a URL, 0 for anything else (another driver's DSN, a key=value string).
mm_pg_parse_url() {
    MM_PG_OK=0
    MM_PG_HOST='' MM_PG_PORT='' MM_PG_USER='' MM_PG_PASSWORD='' MM_PG_DB='' MM_PG_SSLMODE='' MM_PG_TIMEOUT=''
    case "$1" in postgres://* | postgresql://*) ;; *) return 0 ;; esac
    mm_pu_rest=${1#*://}
    mm_pu_rest=${mm_pu_rest%%#*}
    mm_pu_query=
    case "$mm_pu_rest" in *'?'*) mm_pu_query=${mm_pu_rest#*'?'} ;; *) ;; esac
    mm_pu_rest=${mm_pu_rest%%'?'*}
    mm_pu_path=
    case "$mm_pu_rest" in */*) mm_pu_path=${mm_pu_rest#*/} ;; *) ;; esac
    mm_pu_auth=${mm_pu_rest%%/*}
    # The host follows the last @: a password may hold an unescaped one.
    mm_pu_hostport=${mm_pu_auth##*@}
    mm_pu_userinfo=
    case "$mm_pu_auth" in *@*) mm_pu_userinfo=${mm_pu_auth%@*} ;; *) ;; esac
    case "$mm_pu_hostport" in
        \[*\]:*)
            mm_pu_host=${mm_pu_hostport%%]*} mm_pu_port=${mm_pu_hostport##*]:}
            mm_pu_host=${mm_pu_host#\[}
            ;;
        \[*\]) mm_pu_host=${mm_pu_hostport#\[} mm_pu_port= && mm_pu_host=${mm_pu_host%]} ;;
        *:*) mm_pu_host=${mm_pu_hostport%:*} mm_pu_port=${mm_pu_hostport##*:} ;;
        *) mm_pu_host=$mm_pu_hostport mm_pu_port= ;;
    esac
    case "$mm_pu_port" in *[!0-9]* | ??????*) return 0 ;; *) ;; esac
    mm_pu_user=${mm_pu_userinfo%%:*}
    mm_pu_password=
    case "$mm_pu_userinfo" in *:*) mm_pu_password=${mm_pu_userinfo#*:} ;; *) ;; esac
    MM_PG_HOST=$(mm_pct_decode "$mm_pu_host") || return 0
    MM_PG_PORT=$mm_pu_port
    MM_PG_USER=$(mm_pct_decode "$mm_pu_user") || return 0
    MM_PG_PASSWORD=$(mm_pct_decode "$mm_pu_password") || return 0
    MM_PG_DB=$(mm_pct_decode "$mm_pu_path") || return 0
    while [ -n "$mm_pu_query" ]; do
        mm_pu_pair=${mm_pu_query%%&*}
        case "$mm_pu_query" in *'&'*) mm_pu_query=${mm_pu_query#*&} ;; *) mm_pu_query= ;; esac
        case "$mm_pu_pair" in
            sslmode=*) MM_PG_SSLMODE=$(mm_pct_decode "${mm_pu_pair#*=}") || return 0 ;;
            connect_timeout=*) MM_PG_TIMEOUT=$(mm_pct_decode "${mm_pu_pair#*=}") || return 0 ;;
            host=*) MM_PG_HOST=$(mm_pct_decode "${mm_pu_pair#*=}") || return 0 ;;
            port=*) MM_PG_PORT=$(mm_pct_decode "${mm_pu_pair#*=}") || return 0 ;;
            *) ;;
        esac
    done
    case "$MM_PG_TIMEOUT" in *[!0-9]*) MM_PG_TIMEOUT= ;; *) ;; esac
    MM_PG_OK=1
}

# Run $@ as the service user, as the server connects (peer authentication included), with the
# connection in its environment only, in a private umask; stdout is the caller's.
mm_pg_run() {
    (
        umask 077
        mm_service_env
        export PGHOST="${MM_PG_HOST:-localhost}" PGPORT="${MM_PG_PORT:-5432}" PGCONNECT_TIMEOUT="${MM_PG_TIMEOUT:-10}"
        # What the URL leaves out is libpq's default (the user's name, sslmode=prefer), as
        # for an empty variable it would not be.
        [ -z "$MM_PG_USER" ] || export PGUSER="$MM_PG_USER"
        [ -z "$MM_PG_DB" ] || export PGDATABASE="$MM_PG_DB"
        [ -z "$MM_PG_SSLMODE" ] || export PGSSLMODE="$MM_PG_SSLMODE"
        [ -z "$MM_PG_PASSWORD" ] || export PGPASSWORD="$MM_PG_PASSWORD"
        cd / && mm_service_exec env HOME="$MM_STATE" "$@"
    )
}

# pg_restore $2... on dump $1, as the service user: the dump holds what the service user's
# process and database chose to write, and a parser of it is no place for root. That user
# cannot reach the snapshot by name (root's, 0700), so root hands the dump over as a descriptor
# it opened: a directory (pg_dump -Fd) as /proc/self/fd/7, an older package's single file
# (pg_dump -Fc) on stdin. pg_restore's output (a listing, or SQL with -f -) is on stdout.
mm_read_dump() {
    mm_rdu_dump=$1
    shift
    if [ -d "$mm_rdu_dump" ]; then
        mm_as_service pg_restore "$@" /proc/self/fd/7 7<"$mm_rdu_dump"
    else
        mm_as_service pg_restore "$@" <"$mm_rdu_dump"
    fi
}

# How many jobs (database connections) pg_dump and pg_restore run: MMPKG_DB_JOBS, or for 0 the
# machine's CPUs, at most 8. Each is one more connection next to the running server's.
mm_db_jobs() {
    mm_dj_n=$MM_DB_JOBS
    if [ -z "$mm_dj_n" ] || [ "$mm_dj_n" = 0 ]; then
        mm_dj_n=$(nproc 2>/dev/null) || mm_dj_n=1
        case "$mm_dj_n" in '' | *[!0-9]* | ????*) mm_dj_n=1 ;; *) ;; esac
        [ "$mm_dj_n" -le 8 ] || mm_dj_n=8
        [ "$mm_dj_n" -ge 1 ] || mm_dj_n=1
    fi
    printf '%s\n' "$mm_dj_n"
}

# The time now, to the nanosecond, as the log and the journal can be compared by.
mm_now() {
    date -u +%Y-%m-%dT%H:%M:%S.%NZ
}

# The server's database: MM_SQLSETTINGS_DATASOURCE in the environment file wins over
# config.json, as in the server; with the configuration in the database, that database.
mm_db_dsn() {
    mm_dn_dsn=$(mm_setting SqlSettings DataSource)
    if [ -z "$mm_dn_dsn" ]; then
        mm_dn_dsn=$(mm_env_value MM_CONFIG)
    fi
    printf '%s\n' "$mm_dn_dsn"
}

# What to do before an upgrade from $1 to $2 (docs/administering.md, "Upgrades"): sets MM_DBB_PLAN to
# off (switched off, or the same version again: no migration comes), dump (MM_PG_* then say
# where, and MM_DBB_KIB how large the database is, 0 when unknown) or skip (warned), and refuses
# a skip when MMPKG_REQUIRE_DB_BACKUP=1. $3, $4: the driver and the DSN.
mm_db_backup_decide() {
    MM_DBB_PLAN=off
    MM_DBB_KIB=0
    [ "$MM_DB_BACKUP" = 1 ] || return 0
    [ "$1" != "$2" ] || return 0
    mm_pg_parse_url "$4"
    mm_bd_why=
    if [ "${3:-postgres}" != postgres ]; then
        mm_bd_why="the database is not PostgreSQL (SqlSettings.DriverName is $3)"
    elif [ "$MM_PG_OK" != 1 ]; then
        mm_bd_why="SqlSettings.DataSource is not a postgres:// URL"
    elif ! command -v pg_dump >/dev/null 2>&1 || ! command -v pg_restore >/dev/null 2>&1; then
        mm_bd_why="pg_dump is not installed (install postgresql-client)"
    fi
    if [ -z "$mm_bd_why" ]; then
        MM_DBB_PLAN=dump
        return 0
    fi
    if [ "$MM_REQUIRE_DB_BACKUP" = 1 ]; then
        mm_fail "cannot back up the database before upgrading: $mm_bd_why, and MMPKG_REQUIRE_DB_BACKUP=1 asks for a backup. Nothing was changed"
    fi
    MM_DBB_PLAN=skip
    mm_warn "the database is not backed up before this upgrade: $mm_bd_why. Back it up yourself if you may need to roll back; MMPKG_DB_BACKUP=0 in $MM_PACKAGE_CONF turns the backup off"
}

# mm_db_backup_decide for this server, then the size of its database for the space check.
mm_db_backup_plan() {
    mm_bp_driver=$(mm_setting SqlSettings DriverName)
    mm_bp_dsn=$(mm_db_dsn)
    mm_db_backup_decide "$1" "$2" "$mm_bp_driver" "$mm_bp_dsn"
    [ "$MM_DBB_PLAN" = dump ] || return 0
    command -v psql >/dev/null 2>&1 || return 0
    # Its size is what a dump can take at most (the dump is compressed); unknown when the
    # database cannot be asked, and then the dump itself finds out.
    if mm_bp_kib=$(mm_pg_run psql -X -A -t -w -c 'SELECT pg_database_size(current_database()) / 1024' 2>/dev/null); then
        case "$mm_bp_kib" in '' | *[!0-9]* | ????????????????*) ;; *) MM_DBB_KIB=$mm_bp_kib ;; esac
    fi
}

# Dump the database into snapshot $1 and check that pg_restore reads the dump; $2 says when,
# for the messages and the log ("while the server still runs", "after the server stopped").
# pg_dump writes a directory (-Fd) with parallel jobs, as the service user, in the consistent
# snapshot PostgreSQL gives one transaction however long the dump takes. Root makes the
# directory in its own snapshot and hands it over as a descriptor (the service user cannot reach
# it by name); afterwards the directory is root's again, so nothing can add or remove a name in
# it, and it is kept only if it holds nothing but plain files. Sets mm_dd_error when the upgrade
# must not go on (the partial dump is removed); a database that cannot be reached only warns,
# unless MMPKG_REQUIRE_DB_BACKUP=1.
mm_dump_database() {
    mm_dd_error=
    mm_dd_dir="$1/database"
    mm_dd_jobs=$(mm_db_jobs)
    mm_dd_started=$(mm_now)
    mm_dd_t0=$(date +%s)
    mm_say "backing up the database $MM_PG_DB on ${MM_PG_HOST:-localhost} $2 (pg_dump, $mm_dd_jobs jobs)"
    if ! mm_dd_out=$( (umask 077 && mkdir "$mm_dd_dir" && chown "$MM_USER:$MM_GROUP" "$mm_dd_dir") 2>&1); then
        mm_remove_service_tree "$mm_dd_dir"
        mm_dd_error="cannot make $mm_dd_dir: $(mm_last_line "$mm_dd_out")"
        return 0
    fi
    if ! mm_dd_out=$(mm_pg_run pg_dump --format=directory --jobs="$mm_dd_jobs" --no-password \
        --file=/proc/self/fd/7 2>&1 7<"$mm_dd_dir"); then
        mm_remove_service_tree "$mm_dd_dir"
        # libpq follows its error with hints ("Is the server running ...?"): the error says why.
        mm_dd_why=$(printf '%s\n' "$mm_dd_out" | sed -n 's/^pg_dump: error: //p' | head -n 1)
        # Judged on every address libpq tried (localhost is ::1, then 127.0.0.1), from its
        # first line on, without a shell trace's lines (rpm -vv runs scriptlets with sh -x); the
        # message is the first.
        mm_dd_all=$(printf '%s\n' "$mm_dd_out" | sed -n '/^pg_dump: /,${/^+/!p;}')
        mm_dd_out=${mm_dd_why:-$(mm_last_line "$mm_dd_out")}
        if [ "$MM_REQUIRE_DB_BACKUP" != 1 ] && mm_db_unreachable "$mm_dd_all"; then
            mm_offline_note
            mm_warn "the database is not backed up before this upgrade: pg_dump cannot connect to it ($mm_dd_out)$MM_OFFLINE_NOTE"
            return 0
        fi
        mm_dd_error="pg_dump failed: ${mm_dd_out:-no message}"
        return 0
    fi
    # Root's from here; the service group reads it only through a descriptor root hands over.
    if ! mm_dd_out=$( { chown "root:$MM_GROUP" "$mm_dd_dir" && chmod 0750 "$mm_dd_dir"; } 2>&1); then
        mm_remove_service_tree "$mm_dd_dir"
        mm_dd_error="cannot take over $mm_dd_dir: $(mm_last_line "$mm_dd_out")"
        return 0
    fi
    mm_dd_finished=$(mm_now)
    mm_dd_odd=$(find "$mm_dd_dir" -mindepth 1 '(' ! -type f -o -links +1 ')' -print -quit 2>&1) || mm_dd_odd=$mm_dd_dir
    if [ -n "$mm_dd_odd" ]; then
        rm -rf "$mm_dd_dir"
        mm_dd_error="the dump holds $mm_dd_odd, which pg_dump does not write (another process of $MM_USER's was in its directory)"
        return 0
    fi
    if ! mm_dd_out=$(mm_read_dump "$mm_dd_dir" --list 2>&1 >/dev/null); then
        rm -rf "$mm_dd_dir"
        mm_dd_error="pg_restore --list cannot read the dump: $(mm_last_line "$mm_dd_out")"
        return 0
    fi
    if ! mm_dd_out=$(printf 'dump=complete\ndump_started=%s\n' "$mm_dd_started" 2>&1 >>"$1/state"); then
        rm -rf "$mm_dd_dir"
        mm_dd_error="cannot write $1/state: $(mm_last_line "$mm_dd_out")"
        return 0
    fi
    mm_dd_kib=$(du -sk "$mm_dd_dir" | cut -f 1)
    mm_dd_t1=$(date +%s)
    mm_say "saved the database $MM_PG_DB in $mm_dd_dir: ${mm_dd_kib} KiB in $((mm_dd_t1 - mm_dd_t0)) s, read back with pg_restore --list"
    if [ -d "$MM_LOGS" ]; then
        mm_make_tmp
        # One line a test or an administrator can set against the journal's stop of the unit.
        printf 'saved the database %s in %s: %s KiB with %s jobs, %s; pg_dump started %s, finished %s; read back with pg_restore --list\n' \
            "$MM_PG_DB" "$mm_dd_dir" "$mm_dd_kib" "$mm_dd_jobs" "$2" "$mm_dd_started" "$mm_dd_finished" >"$MM_TMP/dump.note"
        mm_log_migration "$MM_VERSION pre-upgrade database backup" "$MM_TMP/dump.note"
    fi
}
mm_pending_value() {
    [ -f "$MM_PENDING/state" ] || return 0
    sed -n "s/^$1=//p" "$MM_PENDING/state"
}

# Keep the newest $2 snapshots named like $1; never the one an unfinished upgrade still needs.
mm_prune_snapshots() {
    mm_ps_pattern=$1
    mm_ps_keep=$2
    mm_ps_current=$(readlink "$MM_PENDING" 2>/dev/null) || mm_ps_current=
    # Newest first by modification time: names only have whole seconds, and two upgrades in
    # the same second would sort by their version strings.
    # Only complete snapshots count (older ones have no mark, but their copy); one abandoned
    # half-way holds nothing to restore and goes, unless an upgrade still points at it.
    if ! mm_ps_stale=$(find "$MM_BACKUPS" -mindepth 1 -maxdepth 1 -type d -name "$mm_ps_pattern" \
        ! -exec grep -qx 'complete=1' '{}/state' ';' ! -exec test -d '{}/etc-mattermost' ';' -print 2>&1); then
        mm_warn "cannot list the snapshots in $MM_BACKUPS, so none were pruned: $mm_ps_stale"
        return 0
    fi
    printf '%s\n' "$mm_ps_stale" | while IFS= read -r mm_ps_dir; do
        [ -z "$mm_ps_dir" ] || [ "$mm_ps_dir" = "$mm_ps_current" ] || mm_remove_snapshot "$mm_ps_dir"
    done
    if ! mm_ps_all=$(find "$MM_BACKUPS" -mindepth 1 -maxdepth 1 -type d -name "$mm_ps_pattern" \
        '(' -exec grep -qx 'complete=1' '{}/state' ';' -o -exec test -d '{}/etc-mattermost' ';' ')' \
        -printf '%T@ %p\n' 2>&1); then
        # Old snapshots stay a little longer; the upgrade itself is not at risk.
        mm_warn "cannot list the snapshots in $MM_BACKUPS, so none were pruned: $mm_ps_all"
        return 0
    fi
    printf '%s\n' "$mm_ps_all" | sed '/^$/d' | sort -rn | tail -n +"$((mm_ps_keep + 1))" |
        cut -d ' ' -f 2- | while IFS= read -r mm_ps_dir; do
        [ "$mm_ps_dir" = "$mm_ps_current" ] || mm_remove_snapshot "$mm_ps_dir"
    done
}

# Remove snapshot $1. Its database dump was the service user's while pg_dump wrote it, and one
# that was interrupted still is: that directory goes the way the service user's trees go.
mm_remove_snapshot() {
    [ ! -d "$1/database" ] || [ -L "$1/database" ] || mm_remove_service_tree "$1/database"
    rm -rf "$1"
}

# Room for a snapshot of $MM_ETC in $MM_BACKUPS, checked before the server is stopped. For an
# upgrade, $1: KiB the database dump may take, $2: KiB of the new release's files (unpacked
# beside the old ones), which must fit below $MM_PREFIX as well.
mm_check_space() {
    # Measured as the service user: its configuration directory is below. What it says goes
    # into arithmetic only as a number (bash runs $(...) in an array index there).
    mm_cs_etc=$(mm_as_service du -sk "$MM_ETC" 2>/dev/null | cut -f 1) || mm_cs_etc=
    case "$mm_cs_etc" in *[!0-9]* | ????????????????*) mm_cs_etc= ;; *) ;; esac
    # Room for the state file and the file system's own bookkeeping as well.
    mm_cs_need=$((${mm_cs_etc:-0} + ${1:-0} + 64))
    mm_cs_what="the snapshot needs ${mm_cs_need} KiB"
    if [ "${1:-0}" != 0 ]; then
        mm_cs_what="the snapshot needs ${mm_cs_need} KiB, the database dump up to ${1} KiB of it"
    fi
    mm_cs_free=$(mm_free_kib "$MM_BACKUPS")
    mm_cs_mount=$(df --output=target "$MM_BACKUPS" | tail -n 1) || mm_cs_mount=$MM_BACKUPS
    if [ "${2:-0}" != 0 ]; then
        # The release goes below the nearest directory of $MM_PREFIX that exists yet.
        mm_cs_dir=$MM_PREFIX
        while [ ! -d "$mm_cs_dir" ]; do mm_cs_dir=$(dirname "$mm_cs_dir"); done
        mm_cs_rmount=$(df --output=target "$mm_cs_dir" | tail -n 1) || mm_cs_rmount=$mm_cs_dir
        if [ "$mm_cs_rmount" = "$mm_cs_mount" ]; then
            mm_cs_need=$((mm_cs_need + $2))
            mm_cs_what="the snapshot and the new release's files in $MM_PREFIX need ${mm_cs_need} KiB (${2} KiB of it the release, up to ${1:-0} KiB the database dump)"
        else
            mm_cs_rfree=$(mm_free_kib "$mm_cs_dir")
            if [ "$mm_cs_rfree" -lt "$2" ]; then
                mm_fail "not enough space for the new release in $MM_PREFIX: the file system $mm_cs_rmount has ${mm_cs_rfree} KiB free and the release needs ${2} KiB. Free some space there and try again; nothing was changed"
            fi
        fi
    fi
    if [ "$mm_cs_free" -lt "$mm_cs_need" ]; then
        mm_fail "not enough space for the pre-upgrade snapshot in $MM_BACKUPS: the file system $mm_cs_mount has ${mm_cs_free} KiB free and $mm_cs_what. Free some space (or keep fewer snapshots with MMPKG_BACKUP_KEEP in $MM_PACKAGE_CONF) and try again; nothing was changed"
    fi
}

# KiB free in the file system of directory $1, for an unprivileged user as for root: df's
# avail; refuses when df cannot say.
mm_free_kib() {
    mm_fk_free=$(df -k --output=avail "$1" | tail -n 1 | tr -d ' ') || mm_fk_free=
    case "$mm_fk_free" in
        '' | *[!0-9]*) mm_fail "cannot tell how much space is free in $1 (df says '$mm_fk_free')" ;;
        *) ;;
    esac
    printf '%s\n' "$mm_fk_free"
}

# A new, empty snapshot directory whose state file says what it is for; printed. $1: its name
# after the time, $2: from, $3: to, $4: 1 when the server ran, $5: 1 when another package
# replaces this one.
mm_new_snapshot() {
    mm_sn_time=$(date -u +%Y%m%dT%H%M%SZ)
    mm_sn_base="$MM_BACKUPS/${mm_sn_time}_$1"
    mm_sn_dir=$mm_sn_base
    mm_sn_n=1
    while [ -e "$mm_sn_dir" ]; do
        mm_sn_dir="$mm_sn_base.$mm_sn_n"
        mm_sn_n=$((mm_sn_n + 1))
    done
    if ! mm_sn_err=$( (umask 077 && mkdir "$mm_sn_dir" &&
        printf 'from=%s\nto=%s\nwas_running=%s\nswitch=%s\n' "$2" "$3" "$4" "$5" >"$mm_sn_dir/state") 2>&1); then
        rm -rf "$mm_sn_dir"
        mm_sn_err=$(mm_last_line "$mm_sn_err")
        mm_fail "cannot write the pre-upgrade snapshot in $MM_BACKUPS: $mm_sn_err; nothing was changed"
    fi
    printf '%s\n' "$mm_sn_dir"
}

# Copy the configuration into snapshot $1 and mark it complete: root's files (etc-mattermost/)
# as root, from root's own directory and only those it trusts; the server's (config/: config.json,
# uploaded certificates) as the service user, so that nothing only root may read lands there.
# When that fails, the partial copy is removed and mm_fs_error says why.
mm_fill_snapshot() {
    mm_fs_error=
    mm_copy_root_files "$1/etc-mattermost"
    [ -n "$mm_fs_error" ] || mm_copy_service_config "$1/config"
    if [ -z "$mm_fs_error" ] && ! mm_fs_out=$(printf 'complete=1\n' 2>&1 >>"$1/state"); then
        mm_fs_error=$(mm_last_line "$mm_fs_out")
    fi
    if [ -n "$mm_fs_error" ]; then
        rm -rf "$1/etc-mattermost" "$1/config"
    fi
}

# Root's files of $MM_ETC that root trusts, into new directory $1; mm_fs_error says what failed.
mm_copy_root_files() {
    if ! mm_cr_out=$( (umask 077 && mkdir -p "$1/overrides.d") 2>&1); then
        mm_fs_error=$(mm_last_line "$mm_cr_out")
        return 0
    fi
    for mm_cr_file in "$MM_ENV_FILE" "$MM_PACKAGE_CONF" "$MM_OVERRIDES_DIR"/*.json; do
        mm_root_file "$mm_cr_file" || continue
        if ! mm_cr_out=$(cp -p -- "$mm_cr_file" "$1/${mm_cr_file#"$MM_ETC"/}" 2>&1); then
            mm_fs_error=$(mm_last_line "$mm_cr_out")
            return 0
        fi
    done
}

# The plain files of the service user's at the top of its configuration directory, read as
# that user, into new directory $1; mm_fs_error says what failed. A name with a newline is no
# file of the server's. The names are what a process of the service user's printed, so that
# user chose them (another of its processes can write into find's): none may lead out of $1.
mm_copy_service_config() {
    if ! mm_cs_out=$( (umask 077 && mkdir -p "$1") 2>&1); then
        mm_fs_error=$(mm_last_line "$mm_cs_out")
        return 0
    fi
    [ -d "$MM_CONFIG_HOME" ] || return 0
    # Only the names on stdout: what the shell traces (sh -x) goes to stderr.
    if ! mm_cs_out=$(mm_as_service find "$MM_CONFIG_HOME" -mindepth 1 -maxdepth 1 -type f -user "$MM_USER" -printf '%f\n' 2>/dev/null); then
        mm_fs_error="cannot list $MM_CONFIG_HOME as $MM_USER"
        return 0
    fi
    while IFS= read -r mm_cs_name; do
        case "$mm_cs_name" in '' | . | .. | */*) continue ;; *) ;; esac
        # Listed as plain files; one replaced by a link since is not followed.
        if ! mm_cs_err=$(mm_as_service dd if="$MM_CONFIG_HOME/$mm_cs_name" iflag=nonblock,nofollow status=none 2>&1 >"$1/$mm_cs_name"); then
            mm_cs_err=$(mm_last_line "$mm_cs_err")
            mm_fs_error="cannot copy $MM_CONFIG_HOME/$mm_cs_name as $MM_USER: $mm_cs_err"
            return 0
        fi
    done <<EOF
$mm_cs_out
EOF
}

# Dump the database, stop the server, snapshot the configuration and leave the record that lets
# whatever finishes the job (postinst, %posttrans, or the unit's ExecStartPre after an
# interruption) complete it. The record exists before the server stops, so that an abandoned
# upgrade (abort-upgrade, a killed script) always knows to start it again; a snapshot that
# cannot be written undoes the stop. $1: from, $2: to, $3: 1 when another Mattermost package
# replaces this one.
#
# The dump is taken while the server still runs, so that the outage does not grow with the
# database: it holds the database as of its start, and what the old server accepts until it
# stops is in no dump (docs/administering.md, "Upgrades"). MMPKG_DB_BACKUP_STRICT=1 takes it
# after the stop instead, inside the outage.
mm_prepare() {
    mm_pr_running=0
    if mm_service_active; then
        mm_pr_running=1
    fi
    # An earlier upgrade that never finished already stopped the server: remember that it ran.
    mm_pr_earlier=$(mm_pending_value was_running)
    [ "$mm_pr_earlier" = 1 ] && mm_pr_running=1
    # An install over what a removal left: whether the server ran when it was removed.
    [ "${MM_RAN_WHEN_REMOVED:-0}" = 1 ] && mm_pr_running=1
    mm_install_dir "$MM_BACKUPS" root root 0700
    mm_db_backup_plan "$1" "$2"
    mm_check_space "$MM_DBB_KIB" 62
    mm_pr_snap=$(mm_new_snapshot "${1:-unknown}_to_$2" "$1" "$2" "$mm_pr_running" "${3:-0}")
    # An upgrade that may roll itself back takes its dump inside the outage: the rollback
    # restores it, and a dump taken while the old server still ran would lack what that server
    # accepted until it stopped.
    mm_who_upgrades
    mm_pr_strict=$MM_DB_BACKUP_STRICT
    mm_pr_strict_why="MMPKG_DB_BACKUP_STRICT=1"
    if [ "$mm_pr_strict" != 1 ] && mm_self_heals; then
        mm_pr_strict=1
        mm_pr_strict_why="an upgrade by $MM_UNATTENDED_BY, which rolls back by itself if it fails"
    fi
    if [ "$MM_DBB_PLAN" = dump ] && [ "$mm_pr_strict" != 1 ]; then
        if mm_service_active; then
            mm_pr_when="while the server still runs"
        else
            mm_pr_when="before the upgrade (the server is not running)"
        fi
        mm_dump_database "$mm_pr_snap" "$mm_pr_when"
        if [ -n "$mm_dd_error" ]; then
            mm_remove_snapshot "$mm_pr_snap"
            mm_fail "cannot back up the database before upgrading: $mm_dd_error. Nothing was changed; fix the cause (or set MMPKG_DB_BACKUP=0 in $MM_PACKAGE_CONF) and try again"
        fi
    fi
    if ! mm_pr_err=$(ln -sfn "$mm_pr_snap" "$MM_PENDING" 2>&1); then
        mm_remove_snapshot "$mm_pr_snap"
        mm_fail "cannot record the pending upgrade in $MM_BACKUPS: $mm_pr_err; nothing was changed"
    fi
    if [ "$mm_pr_running" = 1 ]; then
        mm_say "stopping $MM_UNIT"
    fi
    if mm_service_active; then
        # Where the outage starts, for the report's downtime.
        mm_pr_at=$(date +%s.%N)
        printf 'stopped_at=%s\n' "$mm_pr_at" >>"$mm_pr_snap/state"
    fi
    if ! mm_service_stop; then
        rm -f "$MM_PENDING"
        mm_remove_snapshot "$mm_pr_snap"
        mm_fail "cannot stop $MM_UNIT before upgrading (nothing was changed); see 'journalctl -u $MM_UNIT'"
    fi
    # A server of this unit that becomes ready from now on may accept writes that no dump holds.
    mm_pr_mark=$(mm_ready_mark)
    printf 'ready_mark=%s\n' "$mm_pr_mark" >>"$mm_pr_snap/state"
    mm_fill_snapshot "$mm_pr_snap"
    if [ -n "$mm_fs_error" ]; then
        rm -f "$MM_PENDING"
        mm_remove_snapshot "$mm_pr_snap"
        if [ "$mm_pr_running" = 1 ]; then
            mm_service_start
        fi
        mm_fail "cannot save the configuration in $MM_BACKUPS before upgrading: $mm_fs_error. Nothing was changed; free some space there and try again"
    fi
    mm_say "saved the configuration in $mm_pr_snap"
    if [ "$MM_DBB_PLAN" = dump ] && [ "$mm_pr_strict" = 1 ]; then
        mm_dump_database "$mm_pr_snap" "after the server stopped ($mm_pr_strict_why)"
        if [ -n "$mm_dd_error" ]; then
            rm -f "$MM_PENDING"
            mm_remove_snapshot "$mm_pr_snap"
            if [ "$mm_pr_running" = 1 ]; then
                mm_service_start
            fi
            mm_fail "cannot back up the database before upgrading: $mm_dd_error. Nothing was changed; fix the cause (or set MMPKG_DB_BACKUP=0 in $MM_PACKAGE_CONF) and try again"
        fi
    fi
    mm_prune_snapshots '*_to_*' "$MM_BACKUP_KEEP"
}

# Before new files are unpacked (deb preinst upgrade, rpm %pre on upgrade).
mm_before_upgrade() {
    mm_bu_old=$(mm_installed_version)
    mm_require_config
    mm_check_upgrade_path "$mm_bu_old"
    mm_prepare "$mm_bu_old" "$MM_VERSION"
}

# The other edition's package is taking over: keep the service's state for it to restore.
mm_before_replace() {
    mm_br_old=$(mm_installed_version)
    mm_prepare "$mm_br_old" "$1" 1
}

# This package takes over from the other edition (rpm %pre; dpkg runs preinst install and the
# old prerm's remove in-favour): the same checks as an upgrade, then the hand-over.
mm_before_switch() {
    mm_bs_old=$(mm_installed_version)
    mm_require_config
    mm_check_upgrade_path "$mm_bs_old"
    mm_prepare "$mm_bs_old" "$MM_VERSION" 1
}

# True while another Mattermost package replaces this one: its scripts own the service now.
mm_being_replaced() {
    [ -L "$MM_PENDING" ] || return 1
    mm_bg_switch=$(mm_pending_value switch)
    [ "$mm_bg_switch" = 1 ]
}

# Whether a failed database command's output ($1) says the server could not be reached at all,
# as opposed to refusing us (a wrong password, a missing role or database): only the first may
# wait for the next start, the second is a failed upgrade the administrator must hear about.
# For the driver's own words: what 'db migrate' logs for each failed attempt before 11.9
# (upstream sqlstore SetupConnection logs "Failed to ping DB" with lib/pq's error), and
# pg_dump's. 'db ping' prints none of them (mm_db_probe).
mm_db_unreachable() {
    if printf '%s\n' "$1" | grep -Eqi 'authentica|password|permission denied|role .* does not exist|database .* does not exist|SSL|certificate|no pg_hba'; then
        return 1
    fi
    printf '%s\n' "$1" | grep -Eqi 'connection refused|no such host|i/o timeout|network is unreachable|no route to host|connection timed out|temporary failure in name resolution|could not translate host name|timeout expired|cannot assign requested address'
}

# Whether this script runs where no address is up, not even 127.0.0.1: rpm's unshare plugin
# (rpm 4.20, __transaction_unshare_nonet, on in Debian 13's rpm) runs scriptlets in a network
# namespace of their own with no interface up, where no database server can be reached over
# TCP. The kernel's table of local addresses (/proc/net/fib_trie, per namespace) shows it.
mm_offline() {
    [ -r /proc/net/fib_trie ] || return 1
    ! grep -q 'host LOCAL' /proc/net/fib_trie
}

# MM_OFFLINE_NOTE: the reason to add to a message about a database that cannot be reached, if
# it is that one.
mm_offline_note() {
    MM_OFFLINE_NOTE=
    if mm_offline; then
        MM_OFFLINE_NOTE="; this script runs without network, in a network namespace of its own (rpm's unshare plugin does that when its macro __transaction_unshare_nonet is 1)"
    fi
}

# Append command output ($2, from a root-private file) to the migration log with a header
# ($1). The log directory is the service user's, so the service user writes it.
mm_log_migration() {
    mm_lm_when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    # Non-blocking: a FIFO in its place must not hang root.
    if ! mm_lm_err=$({ printf '== %s: %s\n' "$mm_lm_when" "$1" && cat "$2"; } |
        mm_as_service dd of="$MM_MIGRATE_LOG" oflag=append,nonblock conv=notrunc status=none 2>&1); then
        mm_lm_err=$(mm_last_line "$mm_lm_err")
        mm_warn "cannot write $MM_MIGRATE_LOG ($mm_lm_err); the output of $1 follows"
        cat "$2" >&2
    fi
}

# Run one database command of the new release as the service user ($@: its arguments), with
# its output logged; sets mm_db_rc and leaves the output in $MM_TMP/db.out.
mm_db_command() {
    mm_make_tmp
    mm_dc_t0=$(date +%s%N)
    if mm_run_as_service "$MM_PREFIX/bin/mattermost" "$@" >"$MM_TMP/db.out" 2>&1; then
        mm_db_rc=0
    else
        mm_db_rc=$?
    fi
    mm_dc_t1=$(date +%s%N)
    # How long a migration keeps the site down is what an administrator plans the next by.
    case "$mm_dc_t0$mm_dc_t1" in
        *[!0-9]*) mm_dc_took= ;;
        *)
            mm_dc_ms=$(((mm_dc_t1 - mm_dc_t0) / 1000000))
            mm_dc_took=$(printf ' in %d.%03d s' $((mm_dc_ms / 1000)) $((mm_dc_ms % 1000)))
            ;;
    esac
    mm_log_migration "$MM_VERSION $*, exit $mm_db_rc$mm_dc_took" "$MM_TMP/db.out"
}

# Whether the database server the configuration names answers on the network, for when a
# failed command cannot say: 'db ping' (11.9+) logs each failed attempt without the driver's
# error and always ends in "timed out waiting for database after N attempts: context deadline
# exceeded" (upstream server/cmd/mattermost/commands/db_ping.go@04bf19b2). Sets MM_DB_PROBE: answers
# (a server is there, so it refused us or failed), silent (nothing answered: refused, no
# route, no such host, no reply within seconds) or unknown (no postgres:// server to ask).
# Asked as the service user, with its name service and routes, as the server connects: with
# pg_isready where it is installed (postgresql-client, which the package recommends for its
# backups): it speaks PostgreSQL's protocol without logging in, and reaches a Unix socket too.
# Else a TCP connect through bash's /dev/tcp (bash is on every system these packages support)
# says the same of a TCP address. Each is bounded by timeout: at most 10 seconds.
mm_db_probe() {
    MM_DB_PROBE=unknown
    MM_DB_PROBE_AT=
    mm_dp_dsn=$(mm_db_dsn)
    mm_pg_parse_url "$mm_dp_dsn"
    [ "$MM_PG_OK" = 1 ] || return 0
    MM_DB_PROBE_AT="${MM_PG_HOST:-localhost}:${MM_PG_PORT:-5432}"
    if command -v pg_isready >/dev/null 2>&1; then
        mm_dp_rc=0
        mm_as_service timeout 10 pg_isready -q -h "${MM_PG_HOST:-localhost}" -p "${MM_PG_PORT:-5432}" -t 5 \
            </dev/null >/dev/null 2>&1 || mm_dp_rc=$?
        # 0 accepting, 1 rejecting (starting up), 2 no response, 3 no attempt made.
        case "$mm_dp_rc" in
            0 | 1) MM_DB_PROBE=answers ;;
            2 | 124) MM_DB_PROBE=silent ;;
            *) ;;
        esac
        return 0
    fi
    case "${MM_PG_HOST:-localhost}" in /*) return 0 ;; *) ;; esac
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    if mm_as_service timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/$2"' mm-probe "${MM_PG_HOST:-localhost}" \
        "${MM_PG_PORT:-5432}" </dev/null >/dev/null 2>&1; then
        MM_DB_PROBE=answers
    else
        MM_DB_PROBE=silent
    fi
}

# Sets MM_MIGRATE_RESULT: migrated (or nothing to do), unreachable, or failed (the reason in
# MM_MIGRATE_REASON). Decided by the binary's exit status and, for `db ping`, by asking the
# network: free text alone would take a refused login for a network problem.
#
# The wait is bounded. `db ping` is given 10 seconds (each attempt upstream caps at 10 more).
# Before 11.9 only `db migrate` can tell, and it tries 18 times before it gives up on an
# unreachable database (upstream sqlstore SetupConnection), each try up to 10 s and the next
# 2 s later: up to 4 minutes. The migration itself gets no time limit: one can take hours.
mm_migrate() {
    MM_MIGRATE_RESULT=migrated
    MM_MIGRATE_REASON=
    if [ "$MM_HAS_DB_MIGRATE" != 1 ]; then
        mm_say "this release migrates its database when the server starts"
        return 0
    fi
    if mm_offline; then
        # Waiting minutes for a database no packet can reach helps no one; the server, which
        # systemd runs in the system's namespace, migrates it when it starts.
        MM_MIGRATE_RESULT=unreachable
        mm_offline_note
        mm_say "not migrating the database from here$MM_OFFLINE_NOTE"
        return 0
    fi
    if [ "$MM_HAS_DB_PING" = 1 ]; then
        mm_say "waiting up to 10 seconds for the database (mattermost db ping)"
        mm_db_command db ping --timeout 10s --retry-interval 2s
        if [ "$mm_db_rc" != 0 ]; then
            mm_mg_out=$(cat "$MM_TMP/db.out")
            mm_db_probe
            case "$MM_DB_PROBE" in
                silent) MM_MIGRATE_RESULT=unreachable ;;
                answers)
                    MM_MIGRATE_RESULT=failed
                    MM_MIGRATE_REASON="the database server at $MM_DB_PROBE_AT answers, but 'mattermost db ping' could not use it (a refused login, a missing database or role, TLS): $(mm_last_line "$mm_mg_out")"
                    ;;
                *)
                    MM_MIGRATE_RESULT=failed
                    MM_MIGRATE_REASON=$(mm_last_line "$mm_mg_out")
                    ;;
            esac
            return 0
        fi
        mm_say "migrating the database (mattermost db migrate)"
    else
        mm_say "migrating the database (mattermost db migrate; it waits up to 4 minutes for a database it cannot reach)"
    fi
    mm_db_command db migrate
    [ "$mm_db_rc" = 0 ] && return 0
    mm_mg_out=$(cat "$MM_TMP/db.out")
    # After a successful ping the database was there: any failure is the migration's.
    if [ "$MM_HAS_DB_PING" != 1 ] && mm_db_unreachable "$mm_mg_out"; then
        MM_MIGRATE_RESULT=unreachable
    else
        MM_MIGRATE_RESULT=failed
        MM_MIGRATE_REASON=$(mm_last_line "$mm_mg_out")
    fi
}

# After new files are in place: finish an upgrade the pending record describes, and start the
# server again if it ran ($1: start, or no-start when systemd is about to start it). A failed
# migration, or a server that does not answer in time, ends in mm_upgrade_failed: a rollback by
# itself when nobody watches. The outcome is reported, except from the unit's own start, which
# systemd repeats every few seconds.
mm_finish_upgrade() {
    mm_fu_snap=$(readlink "$MM_PENDING") || mm_fu_snap=$MM_BACKUPS
    mm_fu_from=$(mm_pending_value from)
    mm_fu_last=$(head -n 1 "$MM_LAST_CONFIGURED" 2>/dev/null) || mm_fu_last=
    mm_who_upgrades
    if [ "$mm_fu_from" = "$MM_VERSION" ] && [ "$mm_fu_last" = "$MM_VERSION" ]; then
        # A reinstall, or a new revision of the same release, configured here before: its
        # migrations already ran, and running them again would only add to the log.
        MM_MIGRATE_RESULT=migrated
    else
        mm_migrate
    fi
    case "$MM_MIGRATE_RESULT" in
        unreachable)
            mm_warn "the database cannot be reached; the server will migrate it when it next starts (log: $MM_MIGRATE_LOG)"
            ;;
        failed)
            MM_HEALING=0
            if [ "$1" = start ]; then
                mm_upgrade_failed "$mm_fu_snap" migration "the database migration to $MM_VERSION failed: ${MM_MIGRATE_REASON:-see the log}" "$MM_TMP/db.out"
            fi
            if [ "$MM_HEALING" = 1 ]; then
                mm_fail "the database migration to $MM_VERSION failed: ${MM_MIGRATE_REASON:-see the log}. Nothing was lost. Log: $MM_MIGRATE_LOG; it is rolled back by $MM_HEAL_UNIT"
            fi
            mm_fail "the database migration to $MM_VERSION failed: ${MM_MIGRATE_REASON:-see the log}. Nothing was lost. Log: $MM_MIGRATE_LOG; configuration backup: $mm_fu_snap. Fix the cause, then run dpkg --configure -a, or roll back with 'mattermost-pkg rollback'"
            ;;
        *) ;;
    esac
    # The record goes last: whatever interrupts this leaves it for the retry, which records the
    # version and starts the server again.
    mm_record_configured
    mm_fu_running=$(mm_pending_value was_running)
    MM_START_RESULT=none
    MM_ANSWERED_AT=
    if [ "$mm_fu_running" = 1 ] && [ "$1" = start ]; then
        mm_service_start
    fi
    mm_fu_err=$(rm -f "$MM_PENDING" 2>&1) ||
        mm_fail "cannot remove the pending record $MM_PENDING: $mm_fu_err; the upgrade is done otherwise"
    [ "$1" = start ] && [ -d "$mm_fu_snap/etc-mattermost" ] || return 0
    case "$MM_START_RESULT" in
        silent | failed)
            mm_make_tmp
            journalctl -u "$MM_UNIT" -n 20 --no-pager -o cat >"$MM_TMP/journal" 2>/dev/null || true
            mm_upgrade_failed "$mm_fu_snap" start "$MM_UNIT did not answer at its ping within $MM_START_TIMEOUT seconds (MMPKG_START_TIMEOUT)" "$MM_TMP/journal"
            ;;
        *)
            # Upgrades only: a rollback's downgrade is the rollback's to report.
            if mm_version_valid "$mm_fu_from" && mm_version_lt "$mm_fu_from" "$MM_VERSION"; then
                mm_report upgraded "$mm_fu_snap" "" ""
            fi
            ;;
    esac
}

# A pending record of an upgrade to another version than this package's: one that was
# abandoned before its files were unpacked (rpm has no abort step). Undone like an abort.
mm_pending_elsewhere() {
    [ -L "$MM_PENDING" ] || return 1
    mm_pe_to=$(mm_pending_value to)
    mm_pe_switch=$(mm_pending_value switch)
    [ "$mm_pe_to" != "$MM_VERSION" ] && [ "$mm_pe_switch" != 1 ]
}
# ---- upgrades nobody watches: who runs them, the rollback they ask for, and every outcome's report ----
# An upgrade run by unattended-upgrades, dnf-automatic or 'mattermost-pkg upgrade --unattended'
# that fails its migration, or whose server does not answer in MMPKG_START_TIMEOUT seconds, is
# rolled back by itself (MMPKG_SELF_HEAL): the package manager holds its lock while this runs,
# so the rollback is left to a unit of its own, which waits for it to finish (mattermost-pkg heal).

# A link to the snapshot of the failed upgrade the rollback is for, while one waits.
MM_HEAL="$MM_BACKUPS/heal"
# The last upgrade's or rollback's outcome, as sent to MMPKG_REPORT_URL ('mattermost-pkg report').
MM_REPORT="$MM_BACKUPS/last-report.json"
# The shared secret reports are signed with: root's file beside package.conf, read by nobody else.
MM_REPORT_SECRET="$MM_ETC/report.secret"
MM_HEAL_UNIT=mattermost-pkg-heal.service
MM_ADMIN=/usr/sbin/mattermost-pkg
# Set by mm_who_upgrades.
MM_UNATTENDED_BY=
MM_PM_PIDS=

# Who runs this script, from its ancestors: MM_UNATTENDED_BY names what runs an upgrade nobody
# watches (empty when someone may be), MM_PM_PIDS lists the package managers above this script
# as PID:START (START: when it started, in clock ticks since boot, so that a PID used again
# later is not taken for it), for a rollback to wait for. Only root's own processes run a
# maintainer script: the service user cannot pose as one of them.
mm_who_upgrades() {
    MM_UNATTENDED_BY=
    MM_PM_PIDS=
    [ "$MM_UNATTENDED" != 1 ] || MM_UNATTENDED_BY="MMPKG_UNATTENDED=1"
    mm_wu_pid=$PPID
    while [ "$mm_wu_pid" -gt 1 ] 2>/dev/null; do
        mm_wu_comm=$(cat "/proc/$mm_wu_pid/comm" 2>/dev/null) || break
        mm_wu_ppid=$(mm_process_field "$mm_wu_pid" 2)
        mm_wu_start=$(mm_process_field "$mm_wu_pid" 20)
        [ -n "$mm_wu_start" ] || break
        mm_wu_pm=0
        case "$mm_wu_comm" in
            # The comm of a script is its name, cut to 15 characters.
            unattended-upgr*) MM_UNATTENDED_BY=${MM_UNATTENDED_BY:-unattended-upgrades} mm_wu_pm=1 ;;
            dnf-automatic) MM_UNATTENDED_BY=${MM_UNATTENDED_BY:-dnf-automatic} mm_wu_pm=1 ;;
            dnf5)
                mm_wu_pm=1
                if tr '\0' '\n' <"/proc/$mm_wu_pid/cmdline" 2>/dev/null | grep -qx automatic; then
                    MM_UNATTENDED_BY=${MM_UNATTENDED_BY:-dnf5 automatic}
                fi
                ;;
            dpkg | apt-get | apt | aptitude | rpm | dnf | dnf-3 | yum | microdnf) mm_wu_pm=1 ;;
            *) ;;
        esac
        [ "$mm_wu_pm" = 0 ] || MM_PM_PIDS="$MM_PM_PIDS $mm_wu_pid:$mm_wu_start"
        case "$mm_wu_ppid" in '' | *[!0-9]*) break ;; *) ;; esac
        mm_wu_pid=$mm_wu_ppid
    done
    MM_PM_PIDS=${MM_PM_PIDS# }
}

# Field $2 of process $1's /proc/PID/stat, counted after its name (which may hold spaces and
# parentheses): 2 is the parent's PID, 20 the start time, in clock ticks since boot. Empty when
# the process is gone.
mm_process_field() {
    mm_pf_stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    printf '%s\n' "${mm_pf_stat##*) }" | cut -d ' ' -f "$2"
}

# Whether a failed upgrade rolls itself back: nobody watches it and the administrator allows it.
mm_self_heals() {
    [ "$MM_SELF_HEAL" = 1 ] && [ -n "$MM_UNATTENDED_BY" ]
}

# The upgrade of snapshot $1 failed at step $2 (migration or start), for the reason $3, with the
# failing step's output in file $4. Nobody watches: the rollback is asked for. Otherwise the
# failure is reported and left to the administrator, who may be watching: the scripts ask
# nothing themselves (Debian's policy leaves prompts to debconf), and 'mattermost-pkg rollback'
# asks on the terminal before it discards anything.
# Sets MM_HEALING=1 when a rollback will follow.
mm_upgrade_failed() {
    MM_HEALING=0
    mm_uf_from=$(mm_snapshot_value "$1" from)
    [ -f "$4" ] || : >"$4"
    mm_redact <"$4" | tail -n 20 >"$1/failure.log"
    mm_uf_one=$(printf '%s' "$3" | tr '\n' ' ')
    mm_uf_at=$(date +%s)
    printf 'failed_step=%s\nfailed_at=%s\nfailed_why=%s\n' "$2" "$mm_uf_at" "$mm_uf_one" >>"$1/state"
    mm_uf_why=
    mm_uf_mark=$(mm_snapshot_value "$1" ready_mark)
    mm_uf_now=$(mm_ready_mark)
    if [ "$mm_uf_mark" != "$mm_uf_now" ]; then
        # Ready means it served: what it accepted is in no dump, and a rollback would lose it.
        mm_report failed "$1" "$2" "$3; not rolled back: the new server became ready after the upgrade stopped the old one, so it may have accepted writes that a rollback would discard"
        return 0
    fi
    if mm_self_heals; then
        mm_say "the upgrade to $MM_VERSION failed ($2), and nobody watches it ($MM_UNATTENDED_BY): rolling back to $mm_uf_from once the package manager has finished"
        mm_request_heal "$1"
        return 0
    elif [ -n "$MM_UNATTENDED_BY" ]; then
        mm_uf_why="MMPKG_SELF_HEAL=0 in $MM_PACKAGE_CONF"
    else
        mm_uf_why="someone may be watching it; 'mattermost-pkg rollback' rolls it back, asking first"
    fi
    mm_report failed "$1" "$2" "$3; not rolled back: $mm_uf_why"
}

# Leave the rollback of snapshot $1's upgrade to a unit of its own: it waits for the package
# managers above this script to finish, then runs 'mattermost-pkg heal'. The server stays
# stopped until then, so that nothing is written that the rollback would discard.
mm_request_heal() {
    printf 'pm=%s\nunattended=%s\n' "$MM_PM_PIDS" "$MM_UNATTENDED_BY" >>"$1/state"
    if ! mm_rh_err=$(ln -sfn "$1" "$MM_HEAL" 2>&1); then
        mm_warn "cannot record the rollback in $MM_HEAL ($mm_rh_err); roll back with 'mattermost-pkg rollback'"
        return 0
    fi
    MM_HEALING=1
    if ! mm_systemd_running; then
        mm_warn "no systemd runs here to roll back once the package manager has finished: run 'mattermost-pkg heal' then"
        return 0
    fi
    mm_service_stop || true
    if ! mm_rh_err=$(systemd-run --no-block --collect --unit="$MM_HEAL_UNIT" \
        --description="Roll back the failed upgrade of $MM_PACKAGE to $MM_VERSION" "$MM_ADMIN" heal 2>&1); then
        mm_rh_err=$(mm_last_line "$mm_rh_err")
        mm_warn "cannot start $MM_HEAL_UNIT ($mm_rh_err): run 'mattermost-pkg heal' once the package manager has finished"
        return 0
    fi
    mm_say "$MM_HEAL_UNIT rolls back once the package manager has finished: 'journalctl -u $MM_HEAL_UNIT' follows it"
}

# The failing step's output with the database's password taken out: the one the configuration
# names, wherever it appears, and any URL's user:password@.
mm_redact() {
    mm_rx_dsn=$(mm_db_dsn)
    mm_pg_parse_url "$mm_rx_dsn"
    MM_RX_SECRET=$MM_PG_PASSWORD awk '
        BEGIN { secret = ENVIRON["MM_RX_SECRET"] }
        {
            line = $0
            if (secret != "") {
                out = ""
                i = index(line, secret)
                while (i > 0) {
                    out = out substr(line, 1, i - 1) "***"
                    line = substr(line, i + length(secret))
                    i = index(line, secret)
                }
                line = out line
            }
            gsub(/:\/\/[^:\/@ ]*:[^@ ]*@/, "://***:***@", line)
            print line
        }'
}

# HMAC-SHA256 (RFC 2104) of stdin with the key in file $1 (its first line), in hex. The key goes
# from its file through pipes and the shell's own printf, never onto a command line, which any
# user may read in /proc. Every step returns its own failure.
mm_hmac_sha256() {
    mm_hm_key=$(head -n 1 "$1" | tr -d '\n' | od -An -v -tx1 | tr -d ' \n') || return 1
    mm_hm_len=$(printf '%s' "$mm_hm_key" | wc -c) || return 1
    if [ "$mm_hm_len" -gt 128 ]; then
        # A key longer than the block is its hash (RFC 2104, 2).
        mm_hm_key=$(head -n 1 "$1" | tr -d '\n' | sha256sum | cut -c 1-64) || return 1
    fi
    mm_hm_i='' mm_hm_o='' mm_hm_n=0
    while [ "$mm_hm_n" -lt 64 ]; do
        mm_hm_b=${mm_hm_key%"${mm_hm_key#??}"}
        mm_hm_key=${mm_hm_key#??}
        [ -n "$mm_hm_b" ] || mm_hm_b=00
        mm_hm_i="$mm_hm_i\\$(printf '%03o' $((0x$mm_hm_b ^ 0x36)))" || return 1
        mm_hm_o="$mm_hm_o\\$(printf '%03o' $((0x$mm_hm_b ^ 0x5c)))" || return 1
        mm_hm_n=$((mm_hm_n + 1))
    done
    # shellcheck disable=SC2059 # the format is the key's bytes as octal escapes
    mm_hm_inner=$({ printf "$mm_hm_i" && cat; } | sha256sum | cut -c 1-64) || return 1
    mm_hm_x=
    while [ -n "$mm_hm_inner" ]; do
        mm_hm_b=${mm_hm_inner%"${mm_hm_inner#??}"}
        mm_hm_inner=${mm_hm_inner#??}
        mm_hm_x="$mm_hm_x\\$(printf '%03o' $((0x$mm_hm_b)))" || return 1
    done
    # shellcheck disable=SC2059 # the same
    { printf "$mm_hm_o" && printf "$mm_hm_x"; } | sha256sum | cut -c 1-64
}

# VERSION-REVISION the package is held at, empty when it is not held.
mm_held_version() {
    mm_hv_status=$(dpkg-query -W -f='${Status}' "$MM_PACKAGE" 2>/dev/null) || return 0
    case "$mm_hv_status" in
        hold\ *) dpkg-query -W -f='${Version}' "$MM_PACKAGE" 2>/dev/null || true ;;
        *) ;;
    esac
}

# Value $2 of snapshot $1's state file.
mm_snapshot_value() {
    [ -f "$1/state" ] || return 0
    sed -n "s/^$2=//p" "$1/state" | tail -n 1
}

# Record the outcome of snapshot $1's upgrade in $MM_REPORT and send it to MMPKG_REPORT_URL:
# $1 result (upgraded, failed, rolled-back, rollback-failed), $2 snapshot, $3 the failed step
# (empty when none), $4 what happened, in words. The report holds the failing step's last lines
# without the database's password, and never the configuration.
mm_report() {
    mm_rp_from=$(mm_snapshot_value "$2" from)
    mm_rp_to=$(mm_snapshot_value "$2" to)
    mm_rp_stopped=$(mm_snapshot_value "$2" stopped_at)
    mm_rp_by=$(mm_snapshot_value "$2" unattended)
    [ -n "$mm_rp_by" ] || mm_rp_by=$MM_UNATTENDED_BY
    mm_rp_down=
    if [ -n "$mm_rp_stopped" ] && [ -n "$MM_ANSWERED_AT" ]; then
        mm_rp_down=$(awk -v a="$mm_rp_stopped" -v b="$MM_ANSWERED_AT" 'BEGIN { printf "%.1f", b - a }')
    fi
    mm_rp_held=$(mm_held_version)
    mm_rp_log=
    [ -z "$3" ] || [ ! -f "$2/failure.log" ] || mm_rp_log="$2/failure.log"
    mm_rp_host=$(uname -n)
    mm_rp_time=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    mm_rp_tmp="$MM_REPORT.new"
    if ! jq -n --arg host "$mm_rp_host" --arg package "$MM_PACKAGE" --arg from "$mm_rp_from" \
        --arg to "$mm_rp_to" --arg result "$1" --arg step "$3" --arg reason "$4" \
        --arg downtime "$mm_rp_down" --arg held "$mm_rp_held" --arg by "$mm_rp_by" \
        --arg time "$mm_rp_time" --arg snapshot "$2" \
        --rawfile log "${mm_rp_log:-/dev/null}" '
        def opt: if . == "" then null else . end;
        {host: $host, package: $package, from: ($from | opt), to: ($to | opt), result: $result,
         step: ($step | opt), reason: ($reason | opt),
         downtime_seconds: (if $downtime == "" then null else ($downtime | tonumber) end),
         held: ($held | opt), unattended: ($by | opt), time: $time, snapshot: $snapshot,
         log: ($log | split("\n") | map(select(. != "")))}' >"$mm_rp_tmp" 2>/dev/null ||
        ! mv -f "$mm_rp_tmp" "$MM_REPORT"; then
        rm -f "$mm_rp_tmp"
        mm_warn "cannot write the upgrade's report $MM_REPORT"
        return 0
    fi
    mm_send_report
}

# POST $MM_REPORT to MMPKG_REPORT_URL, signed; a report that cannot be sent is only warned
# about: the upgrade's outcome does not depend on it.
mm_send_report() {
    [ -n "$MM_REPORT_URL" ] || return 0
    mm_sr_mode=$(stat -c '%a' "$MM_REPORT_SECRET" 2>/dev/null) || mm_sr_mode=
    if ! mm_root_file "$MM_REPORT_SECRET" || [ $((0${mm_sr_mode:-77} & 077)) -ne 0 ]; then
        mm_warn "the report is not sent to $MM_REPORT_URL: $MM_REPORT_SECRET, the secret it is signed with, is missing or not root's alone (mode 0600); 'mattermost-pkg report --send' sends it once it is"
        return 0
    fi
    mm_sr_sig=$(mm_hmac_sha256 "$MM_REPORT_SECRET" <"$MM_REPORT") || mm_sr_sig=
    case "$mm_sr_sig" in
        *[!0-9a-f]* | '') mm_sr_sig= ;;
        *) ;;
    esac
    if [ -z "$mm_sr_sig" ]; then
        mm_warn "cannot sign the report with $MM_REPORT_SECRET; it is not sent"
        return 0
    fi
    if ! mm_sr_err=$(curl -gfsS --max-time 30 -o /dev/null -H 'Content-Type: application/json' \
        -H "X-Mmpkg-Signature: sha256=$mm_sr_sig" --data-binary "@$MM_REPORT" -- "$MM_REPORT_URL" 2>&1); then
        mm_sr_err=$(mm_last_line "$mm_sr_err")
        mm_warn "cannot send the report to $MM_REPORT_URL ($mm_sr_err); 'mattermost-pkg report --send' sends it again"
        return 0
    fi
    mm_say "reported the outcome to $MM_REPORT_URL"
}
# ---- configure: everything after the files are in place, for install and upgrade alike ----

# After a removal, the downgrade guard compares with this: the database is at its schema.
mm_record_configured() {
    if ! { printf '%s\n' "$MM_VERSION" >"$MM_LAST_CONFIGURED.new" &&
        mv -f "$MM_LAST_CONFIGURED.new" "$MM_LAST_CONFIGURED"; }; then
        rm -f "$MM_LAST_CONFIGURED.new"
        mm_fail "cannot record the configured version in $MM_LAST_CONFIGURED; free some space in $MM_BACKUPS and try again"
    fi
}

mm_configure() {
    mm_ensure_user
    mm_ensure_dirs
    # Before anything reads the environment file: MM_CONFIG may come with it.
    mm_carry_handmade_env
    mm_cf_fresh=0
    if [ ! -e "$MM_CONFIG" ] && ! mm_config_in_database; then
        mm_check_overrides
        mm_name_unknown_overrides
        mm_create_config
        mm_cf_fresh=1
    else
        mm_apply_overrides
    fi
    if mm_pending_elsewhere; then
        mm_abort_upgrade start
    elif [ -L "$MM_PENDING" ]; then
        mm_finish_upgrade start
    fi
    mm_record_configured
    rm -f "$MM_REMOVED"
    if [ "$mm_cf_fresh" = 1 ]; then
        mm_say "Mattermost $MM_VERSION is installed and enabled, but not started."
        mm_say "Next: set SqlSettings.DataSource and ServiceSettings.SiteURL in $MM_CONFIG"
        mm_say "(or as MM_* variables in $MM_ENV_FILE), then run: systemctl start $MM_UNIT"
    fi
}

# An upgrade was abandoned before the new files were configured: bring the old server back.
# A snapshot the upgrade never finished writing goes too: nothing could restore from it.
# $1: start, or no-start when systemd is starting the server anyway.
mm_abort_upgrade() {
    [ -L "$MM_PENDING" ] || return 0
    mm_ab_running=$(mm_pending_value was_running)
    mm_ab_complete=$(mm_pending_value complete)
    mm_ab_snap=$(readlink "$MM_PENDING") || mm_ab_snap=
    rm -f "$MM_PENDING"
    if [ "$mm_ab_complete" != 1 ] && [ -n "$mm_ab_snap" ]; then
        mm_remove_snapshot "$mm_ab_snap"
    fi
    if [ "$mm_ab_running" = 1 ] && [ "$1" = start ]; then
        mm_service_start
    fi
}

mm_before_remove() {
    mm_being_replaced && return 0
    mm_bm_ran=0
    if mm_service_active; then
        mm_bm_ran=1
        mm_say "stopping $MM_UNIT"
    fi
    mm_stop_or_fail
    # For a later install over what this removal leaves: it starts the server again if it ran.
    if ! { install -d -o root -g root -m 0700 "$MM_BACKUPS" &&
        printf 'was_running=%s\n' "$mm_bm_ran" >"$MM_REMOVED"; } 2>/dev/null; then
        mm_warn "cannot write $MM_REMOVED; a later install will not start $MM_UNIT by itself"
    fi
}

# Purge: configuration and logs go; the file store and backups stay unless asked for.
mm_purge() {
    if [ -e "$MM_SHARE/version" ]; then
        mm_say "another Mattermost package is installed; its configuration and data stay"
        return 0
    fi
    mm_remove_service_tree "$MM_CONFIG_DIR"
    rm -rf "$MM_ETC"
    mm_remove_service_tree "$MM_LOGS"
    if [ "$MM_PURGE_DATA" = 1 ]; then
        mm_remove_service_tree "$MM_STATE"
        for mm_pu_snap in "$MM_BACKUPS"/*; do
            [ ! -d "$mm_pu_snap" ] || [ -L "$mm_pu_snap" ] || mm_remove_snapshot "$mm_pu_snap"
        done
        rm -rf "$MM_BACKUPS"
        mm_say "removed $MM_STATE and $MM_BACKUPS (MMPKG_PURGE_DATA=1)"
    elif [ -d "$MM_STATE" ]; then
        mm_say "kept the file store $MM_STATE and backups $MM_BACKUPS; set MMPKG_PURGE_DATA=1 when purging to remove them"
    fi
}
# ---- end of the lifecycle library ----
