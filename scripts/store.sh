# Sourced by the test scripts: the broker's store options for `--store sqlite|postgres`.
#   store_args sqlite DIR     --data DIR
#   store_args postgres DIR   --store $JOBWIRE_TEST_POSTGRES with a fresh schema (t_<random>), which the
#                             broker creates: every run has a store of its own in the shared database
# Prints one option per line, for `mapfile -t args < <(store_args ...)`.
store_args() {
    case $1 in
        sqlite) printf '%s\n' --data "$2" ;;
        postgres)
            [ -n "${JOBWIRE_TEST_POSTGRES:-}" ] || { echo "store_args: JOBWIRE_TEST_POSTGRES is not set" >&2; return 1; }
            local schema sep="?"
            schema="t_$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')"
            [[ $JOBWIRE_TEST_POSTGRES == *\?* ]] && sep="&"
            printf '%s\n' --store "$JOBWIRE_TEST_POSTGRES${sep}schema=$schema"
            ;;
        *) echo "store_args: no store $1 (sqlite or postgres)" >&2; return 1 ;;
    esac
}
