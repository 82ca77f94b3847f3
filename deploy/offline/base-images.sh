#!/usr/bin/env bash
# OFFLINE STAND-INS for the images deploy/Dockerfile and deploy/compose.yaml pull from a registry.
#
#   A user whose Docker can pull images never needs this script: `docker compose pull` /
#   `docker build` fetch the real debian, postgres, redis, nginx and prometheus images.
#
# It is for machines that reach Debian's package mirror but no image registry (CI, sandboxes):
# it makes a Debian base image with debootstrap and builds the services' images on it from
# Debian's packages, tagged with the very names the files use, so the files run unchanged.
# Every image it makes carries the label org.boxoffice.offline-standin, and a second tag
# offline-standin/<name>:<tag>, so `docker images` shows what is not the real thing:
#
#   debian:bookworm-slim      debootstrap --variant=minbase bookworm, slimmed (no docs/man/locales)
#   postgres:15               Debian postgresql-15 + an entrypoint honouring POSTGRES_USER/_PASSWORD/_DB
#   redis:7                   Debian redis-server 7.0
#   nginx:1.28-alpine         Debian nginx 1.22 (not 1.28, not alpine) + wget
#   prom/prometheus:v2.55.1   Debian prometheus 2.42 (not 2.55) + wget
#
# The names are read from deploy/compose.yaml and deploy/Dockerfile. The debootstrap result is
# cached as a tarball under $CACHE_DIR (default /var/cache/boxoffice-offline), so a second run
# (or a run after `docker system prune`) skips the download. Images that already exist are kept
# (a real image pulled from a registry is never replaced) unless --force.
#
# usage: deploy/offline/base-images.sh [--force] [--base-only] [--refresh-cache]
#   --base-only      only debian:<release>-slim (what the boxoffice image needs)
#   --force          rebuild the images even if they exist, without the build cache (fresh
#                    packages); the cached rootfs is reused
#   --refresh-cache  run debootstrap again instead of using the cached rootfs tarball
set -euo pipefail
SCRIPT_NAME=base-images
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE=0 BASE_ONLY=0 REFRESH=0
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    --base-only) BASE_ONLY=1 ;;
    --refresh-cache) REFRESH=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done

CACHE_DIR=${CACHE_DIR:-/var/cache/boxoffice-offline}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-900}
COMPOSE_FILE=$REPO_ROOT/deploy/compose.yaml
RELEASE=$(debian_release)
[[ -n $RELEASE ]] || die "no ARG DEBIAN_RELEASE=… in deploy/Dockerfile"
BASE_IMAGE=debian:$RELEASE-slim

# The image a compose service uses, e.g. compose_image postgres -> postgres:15.
compose_image() {
  sed -n "s#^ *image: *\(\"\{0,1\}\)\($1:[^\" ]*\)\1 *\$#\2#p" "$COMPOSE_FILE" | head -n 1
}

# The Debian mirror apt uses here (deb822 .sources or one-line sources.list), for debootstrap and
# for the images' own apt sources. Prints: MAIN_URI SECURITY_URI (the second may be empty).
apt_mirrors() {
  python3 - "$RELEASE" <<'PY'
import glob, re, sys
release = sys.argv[1]
main = security = ""
def consider(uri, suites):
    global main, security
    uri = uri.rstrip("/")
    for s in suites:
        if s in (release, f"{release}-updates") and not main and "security" not in uri:
            main = uri
        if s == f"{release}-security" and not security:
            security = uri
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in stanza.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                fields[m.group(1).lower()] = m.group(2).strip()
        if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
            continue
        for uri in fields.get("uris", "").split():
            consider(uri, fields.get("suites", "").split())
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if m:
            consider(m.group(1), [m.group(2)])
print(main or "http://deb.debian.org/debian", security)
PY
}

tag_standin() {
  # Also under offline-standin/<name>:<tag>, so the substitution is visible in `docker images`.
  docker tag "$1" "offline-standin/${1##*/}"
}

# ---- the Debian base ------------------------------------------------------------------------
make_rootfs_tarball() {
  local tarball=$1 main security rootfs
  read -r main security < <(apt_mirrors)
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >/dev/null 2>&1 \
      || { as_root timeout 300 apt-get update -qq >/dev/null 2>&1 || true
           DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq debootstrap >/dev/null; }
  }
  rootfs=$(mktemp -d /var/tmp/boxoffice-rootfs.XXXXXX)
  # debootstrap mounts /proc and /sys in the target while it works; never leave them behind.
  trap 'for m in proc sys dev/pts; do as_root umount -l "'"$rootfs"'/$m" 2>/dev/null || true; done; as_root rm -rf "'"$rootfs"'"' EXIT
  say "debootstrap --variant=minbase $RELEASE from $main (a few minutes)"
  as_root timeout "$BUILD_TIMEOUT" debootstrap --variant=minbase --components=main "$RELEASE" "$rootfs" "$main" \
    >"$CACHE_DIR/debootstrap.log" 2>&1 || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"; }

  # apt sources of the image: the mirror this machine uses.
  {
    echo "deb $main $RELEASE main"
    echo "deb $main $RELEASE-updates main"
    [[ -n $security ]] && echo "deb $security $RELEASE-security main"
  } | as_root tee "$rootfs/etc/apt/sources.list" >/dev/null
  # Slim like the official -slim images: no docs, man pages or translations, now or later.
  as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  as_root tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
CFG
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  as_root find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  as_root rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/*
  # Docker provides these at run time.
  as_root sh -c ": >'$rootfs/etc/resolv.conf'; : >'$rootfs/etc/machine-id'; echo localhost >'$rootfs/etc/hostname'"
  as_root tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
  as_root mv "$tarball.tmp" "$tarball"
}

make_base() {
  if [[ $FORCE -eq 0 ]] && image_exists "$BASE_IMAGE"; then
    say "$BASE_IMAGE exists: kept ($(docker image inspect -f '{{index .Config.Labels "'$STANDIN_LABEL'"}}' "$BASE_IMAGE" 2>/dev/null | grep -q . && echo stand-in || echo not a stand-in))"
    return 0
  fi
  as_root mkdir -p "$CACHE_DIR"
  local tarball=$CACHE_DIR/debian-$RELEASE-minbase.tar
  if [[ $REFRESH -eq 1 || ! -s $tarball ]]; then
    make_rootfs_tarball "$tarball"
  else
    say "using the cached rootfs $tarball"
  fi
  say "docker import -> $BASE_IMAGE"
  local old_image
  old_image=$(image_id "$BASE_IMAGE")
  timeout "$BUILD_TIMEOUT" docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $STANDIN_LABEL=debootstrap-minbase-$RELEASE" \
    -m "offline stand-in: debootstrap --variant=minbase $RELEASE (deploy/offline/base-images.sh)" \
    "$tarball" "$BASE_IMAGE" >/dev/null
  tag_standin "$BASE_IMAGE"
  drop_replaced "$old_image" "$BASE_IMAGE"
}

# ---- the services -----------------------------------------------------------------------------
make_service() {
  local service=$1 image dir args=()
  image=$(compose_image "$service")
  [[ -n $image ]] || die "no image: line for $service in $COMPOSE_FILE"
  if [[ $FORCE -eq 0 ]] && image_exists "$image"; then
    say "$image exists: kept"
    return 0
  fi
  dir=$OFFLINE_DIR/images/${service##*/}
  case $service in
    postgres)
      local major=${image#postgres:}
      major=${major%%[.-]*}
      args+=(--build-arg "PG_MAJOR=$major")
      ;;
  esac
  [[ $FORCE -eq 1 ]] && args+=(--no-cache)
  say "building $image (stand-in from Debian's packages)"
  local old_image
  old_image=$(image_id "$image")
  # --network host: apt-get reaches the mirror through the host's network (the engine started by
  # start-dockerd.sh has no bridge).
  docker_build --network host --build-arg "BASE=$BASE_IMAGE" "${args[@]}" \
    --label "$STANDIN_LABEL=debian-$RELEASE-packages" -t "$image" "$dir" >"$CACHE_DIR/build-${service##*/}.log" 2>&1 \
    || { tail -n 30 "$CACHE_DIR/build-${service##*/}.log" >&2; die "building $image failed (log: $CACHE_DIR/build-${service##*/}.log)"; }
  tag_standin "$image"
  drop_replaced "$old_image" "$image"
}

ensure_dockerd
as_root mkdir -p "$CACHE_DIR"
make_base
if [[ $BASE_ONLY -eq 0 ]]; then
  for s in postgres redis nginx prom/prometheus; do make_service "$s"; done
fi
for image in "$BASE_IMAGE" $([[ $BASE_ONLY -eq 1 ]] || for s in postgres redis nginx prom/prometheus; do compose_image "$s"; done); do
  if image_exists "$image"; then
    size=$(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')
    kind=$(docker image inspect -f '{{index .Config.Labels "'"$STANDIN_LABEL"'"}}' "$image" 2>/dev/null)
    printf '%s\t%s\t%s\n' "$image" "$size" "${kind:+stand-in ($kind)}" >&2
  fi
done
