#!/usr/bin/env bash
# Builds, on this machine, the base images the Dockerfiles and compose files name, for
# machines that reach Debian's package mirror but no image registry (CI here). On a normal
# machine nothing of this is needed: Docker pulls debian:bookworm-slim, postgres:16 and
# python:3.12-slim from Docker Hub.
#
# Idempotent: an image that already exists is kept. Needs root, debootstrap and a running
# Docker engine. Prints the tags it provides:
#   debian:bookworm-slim        the runtime base (a debootstrap minbase root filesystem)
#   lanyard-ci/postgres:15      Debian's PostgreSQL, started like the official image (.ci/images/postgres)
#   lanyard-ci/python:3         Debian's python3, for the example relying party (.ci/images/python)
set -euo pipefail
cd "$(dirname "$0")/.."

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt already uses, so debootstrap needs no other network access.
debian_mirror() {
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if ! have_image debian:bookworm-slim; then
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /tmp/lanyard-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "debian:bookworm-slim: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/lanyard-debootstrap.log 2>&1 || {
    tail -n 30 /tmp/lanyard-debootstrap.log
    exit 1
  }
  # What the official slim image leaves out: documentation, manuals, translations, apt's
  # lists and caches (also for packages installed later in derived images).
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/{man,info,locale}/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  # mktemp made the directory 0700, and "." becomes the image's "/": non-root users need 0755.
  chmod 0755 "$rootfs"
  tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
else
  echo "debian:bookworm-slim: present"
fi

for name in postgres python; do
  case "$name" in
    postgres) tag=lanyard-ci/postgres:15 ;;
    python) tag=lanyard-ci/python:3 ;;
  esac
  if have_image "$tag"; then
    echo "$tag: present"
  else
    echo "$tag: building from .ci/images/$name"
    docker build -q -t "$tag" ".ci/images/$name" >/dev/null
  fi
done
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(debian:bookworm-slim|lanyard-ci/)' || true
