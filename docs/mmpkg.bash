# bash completion for mmpkg(1), generated from its parser by `make readme` (mmpkg/cli/manual.py).
# shellcheck shell=bash

# The words each command takes ("mmpkg repo add"): its options, and its commands (mmpkg, mmpkg repo).
declare -gA _mmpkg_options=(
    [mmpkg]='-h --help -V --version -q --quiet -v --verbose'
    ['mmpkg inspect']='-h --help -q --quiet -v --verbose --json --revision'
    ['mmpkg build']='-h --help -q --quiet -v --verbose --config --json --out --formats --revision --target --compression --maintainer --set --allow-unknown-settings --source-date-epoch --edition --arch --base-url --keyring --sha256 --cache'
    ['mmpkg repo']='-h --help -q --quiet -v --verbose'
    ['mmpkg repo add']='-h --help -q --quiet -v --verbose --channel --keep --dry-run --sign-key --json'
    ['mmpkg repo list']='-h --help -q --quiet -v --verbose --channel --json'
    ['mmpkg repo promote']='-h --help -q --quiet -v --verbose --from --to --after --keep --phased --dry-run --sign-key --json'
    ['mmpkg repo phase']='-h --help -q --quiet -v --verbose --channel --sign-key'
    ['mmpkg repo remove']='-h --help -q --quiet -v --verbose --channel --sign-key --json'
    ['mmpkg repo check']='-h --help -q --quiet -v --verbose --deep --endpoint-url --json'
    ['mmpkg repo publish']='-h --help -q --quiet -v --verbose --dry-run --keep-generations --jobs --endpoint-url --json'
    ['mmpkg repo export-key']='-h --help -q --quiet -v --verbose'
    ['mmpkg repo client-config']='-h --help -q --quiet -v --verbose --channel --format --unattended --commands --json'
    ['mmpkg repo config']='-h --help -q --quiet -v --verbose --channel --keep --json'
    ['mmpkg repo keys']='-h --help -q --quiet -v --verbose --json'
    ['mmpkg repo add-key']='-h --help -q --quiet -v --verbose --sign-key --json'
    ['mmpkg repo retire-key']='-h --help -q --quiet -v --verbose --sign-key --json'
    ['mmpkg releases']='-h --help -q --quiet -v --verbose --since --include-rc --json --api-url'
    ['mmpkg fetch']='-h --help -q --quiet -v --verbose --json --edition --arch --dest --base-url --keyring --sha256 --cache'
    ['mmpkg sync']='-h --help -q --quiet -v --verbose --since --editions --arches --channel-rules --include-rc --keep --maintainer --sign-key --notify --json --publish --keep-generations --jobs --endpoint-url --plan --dry-run --api-url --base-url --keyring --cache'
)
declare -gA _mmpkg_commands=(
    [mmpkg]='inspect build repo releases fetch sync'
    ['mmpkg repo']='add list promote phase remove check publish export-key client-config config keys add-key retire-key'
)
# What follows an option that takes a value: its choices, "file" or "dir" for a path, "" for text.
declare -gA _mmpkg_values=(
    ['mmpkg inspect --revision']=''
    ['mmpkg build --config']=file
    ['mmpkg build --out']=dir
    ['mmpkg build --formats']=''
    ['mmpkg build --revision']=''
    ['mmpkg build --target']=''
    ['mmpkg build --compression']='zstd xz gzip'
    ['mmpkg build --maintainer']=''
    ['mmpkg build --set']=''
    ['mmpkg build --source-date-epoch']=''
    ['mmpkg build --edition']='enterprise team'
    ['mmpkg build --arch']='amd64 arm64'
    ['mmpkg build --base-url']=''
    ['mmpkg build --keyring']=file
    ['mmpkg build --sha256']=''
    ['mmpkg build --cache']=dir
    ['mmpkg repo add --channel']=''
    ['mmpkg repo add --keep']=''
    ['mmpkg repo add --sign-key']=''
    ['mmpkg repo list --channel']=''
    ['mmpkg repo promote --from']=''
    ['mmpkg repo promote --to']=''
    ['mmpkg repo promote --after']=''
    ['mmpkg repo promote --keep']=''
    ['mmpkg repo promote --phased']=''
    ['mmpkg repo promote --sign-key']=''
    ['mmpkg repo phase --channel']=''
    ['mmpkg repo phase --sign-key']=''
    ['mmpkg repo remove --channel']=''
    ['mmpkg repo remove --sign-key']=''
    ['mmpkg repo check --endpoint-url']=''
    ['mmpkg repo publish --keep-generations']=''
    ['mmpkg repo publish --jobs']=''
    ['mmpkg repo publish --endpoint-url']=''
    ['mmpkg repo client-config --channel']=''
    ['mmpkg repo client-config --format']='apt dnf'
    ['mmpkg repo config --channel']=''
    ['mmpkg repo config --keep']=''
    ['mmpkg repo add-key --sign-key']=''
    ['mmpkg repo retire-key --sign-key']=''
    ['mmpkg releases --since']=''
    ['mmpkg releases --api-url']=''
    ['mmpkg fetch --edition']='enterprise team'
    ['mmpkg fetch --arch']='amd64 arm64'
    ['mmpkg fetch --dest']=dir
    ['mmpkg fetch --base-url']=''
    ['mmpkg fetch --keyring']=file
    ['mmpkg fetch --sha256']=''
    ['mmpkg fetch --cache']=dir
    ['mmpkg sync --since']=''
    ['mmpkg sync --editions']=''
    ['mmpkg sync --arches']=''
    ['mmpkg sync --channel-rules']=file
    ['mmpkg sync --keep']=''
    ['mmpkg sync --maintainer']=''
    ['mmpkg sync --sign-key']=''
    ['mmpkg sync --notify']=''
    ['mmpkg sync --publish']=''
    ['mmpkg sync --keep-generations']=''
    ['mmpkg sync --jobs']=''
    ['mmpkg sync --endpoint-url']=''
    ['mmpkg sync --api-url']=''
    ['mmpkg sync --base-url']=''
    ['mmpkg sync --keyring']=file
    ['mmpkg sync --cache']=dir
)
# Commands whose arguments are paths (TARBALL, PACKAGE, REPO, ...).
declare -gA _mmpkg_paths=(
    ['mmpkg inspect']=1
    ['mmpkg build']=1
    ['mmpkg repo add']=1
    ['mmpkg repo list']=1
    ['mmpkg repo promote']=1
    ['mmpkg repo phase']=1
    ['mmpkg repo remove']=1
    ['mmpkg repo publish']=1
    ['mmpkg repo export-key']=1
    ['mmpkg repo config']=1
    ['mmpkg repo keys']=1
    ['mmpkg repo add-key']=1
    ['mmpkg repo retire-key']=1
    ['mmpkg sync']=1
)

_mmpkg() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local command=mmpkg word i
    COMPREPLY=()
    # The command so far: the words that name one, less the values that options took.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ -v "_mmpkg_values[$command $word]" ]]; then
            ((i++))
        elif [[ $word != -* && " ${_mmpkg_commands[$command]:-} " == *" $word "* ]]; then
            command="$command $word"
        fi
    done
    if [[ -v "_mmpkg_values[$command $prev]" ]]; then
        case ${_mmpkg_values[$command $prev]} in
            file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
            dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
            "") ;;
            *) mapfile -t COMPREPLY < <(compgen -W "${_mmpkg_values[$command $prev]}" -- "$cur") ;;
        esac
        return 0
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_mmpkg_options[$command]:-}" -- "$cur")
    elif [[ -n ${_mmpkg_commands[$command]:-} ]]; then
        mapfile -t COMPREPLY < <(compgen -W "${_mmpkg_commands[$command]}" -- "$cur")
    elif [[ -v "_mmpkg_paths[$command]" ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    return 0
}

complete -F _mmpkg mmpkg
