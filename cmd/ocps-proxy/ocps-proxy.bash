# bash completion for ocps-proxy (installed by meson as
# share/bash-completion/completions/ocps-proxy).
_ocps_proxy() {
    local cur prev cmd i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="submit state list get logs wait delete watch ping version"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -s|--server|-o|--output) ((i++)) ;;
            -*) ;;
            *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
        -o|--output) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
        -s|--server) COMPREPLY=($(compgen -W "http://127.0.0.1:8080 unix:/" -- "$cur")); return ;;
        -f|--file|--stdout|--stderr|-w|--workdir) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --code) COMPREPLY=($(compgen -W "QUEUED INITIALIZING RUNNING COMPLETE EXECUTOR_ERROR SYSTEM_ERROR CANCELING CANCELED" -- "$cur")); return ;;
        -u|--user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
    esac
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands --server --output --help --version" -- "$cur"))
        return
    fi
    local flags
    case $cmd in
        submit) flags="--file --user --name --image --mount --port --cores --memory --cputime --walltime --stdout --stderr --env --workdir --tag --wait --follow --help" ;;
        list) flags="--code --user --all --help" ;;
        logs) flags="--follow --stderr --system --tail --help" ;;
        watch) flags="--all --interval --count --help" ;;
        *) flags="--help" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    fi
}
complete -F _ocps_proxy ocps-proxy
