# Shared by the scripts beside it: sourced by them, not run.
# usage_if_asked "$@": when the first argument is -h or --help, print the calling script's
# header comment (its lines after the #! line, up to the first that is not a comment) and
# exit; each script's header is its usage.

usage_if_asked() {
  case "${1-}" in
    -h | --help)
      sed -n '2,/^[^#]/{/^#/{s/^# \{0,1\}//;p;};}' "$0"
      exit 0
      ;;
  esac
}
