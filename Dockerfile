# kubelet-sentinel image: one statically linked binary on an empty base.
#
# The supported, reproducible build is scripts/build-image.sh (docs/image.md): it builds the
# binary and this file's final stage with buildah, without a Docker daemon, and prints the
# image's digest. With Docker (not run in CI, which cannot pull base images):
#
#   docker build --platform linux/amd64 -t kubelet-sentinel \
#     --build-arg REVISION="$(git rev-parse --short=12 HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" .
#
# Stage "build" compiles the agent against glibc with crt-static, the same build CI does
# (CI's toolchain has no musl target), with `cargo auditable` so that the binary carries its
# dependency list (`cargo audit bin`, trivy, grype and syft read it). The binary needs no
# loader, no libc and no NSS at run time: it resolves no host names (it probes the kubelet
# on literal addresses). The version label below must match Cargo.toml
# (scripts/check-image.sh checks it).
#
# CI cannot pull base images: scripts/build-image.sh builds this same file's final stage
# with buildah and `--build-context build=<dir>`, a directory that holds the binary it
# built at out/kubelet-sentinel. A named build context replaces the stage of the same
# name, so nothing is pulled and the build stage is not run there. Keep the binary's path
# (/out/kubelet-sentinel), the stage names (build, image), the cargo-auditable version and
# the RUSTFLAGS in step with that script.

# The tag matches the toolchain the project is tested with (rustc 1.95). Pin it by digest
# (rust:1.95-bookworm@sha256:...) where the registry can be reached to look the digest up.
FROM docker.io/library/rust:1.95-bookworm AS build

# cargo-auditable, the version scripts/build-image.sh pins, from crates.io.
RUN cargo install --locked --version 0.7.7 cargo-auditable

# The revision for kubelet_sentinel_build_info{revision}: .git is not in the build
# context, so build.rs takes it from here and falls back to "unknown".
ARG REVISION=""
ENV KUBELET_SENTINEL_REVISION=${REVISION}

WORKDIR /src
# .dockerignore lets in only what the package needs (Cargo.toml's `include`).
COPY . .
# The sources are at /src already; the registry ($CARGO_HOME, /usr/local/cargo in the rust
# image) is remapped to /cargo, as scripts/build-image.sh maps its checkout and registry.
RUN RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=${CARGO_HOME}=/cargo" \
      cargo auditable build --release --locked --target x86_64-unknown-linux-gnu --bin kubelet-sentinel \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-gnu/release/kubelet-sentinel /out/kubelet-sentinel \
 && /out/kubelet-sentinel --version

FROM scratch AS image

ARG REVISION=""
LABEL org.opencontainers.image.title="kubelet-sentinel" \
      org.opencontainers.image.description="Continuous, evidence-backed kubelet hardening checks exported to Prometheus" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="scratch"

COPY --from=build /out/kubelet-sentinel /kubelet-sentinel

# Root (uid 0) only so that it can read root-only host files under /host (the kubelet's
# configuration, kubeconfig and private keys). Everything else is taken away in the
# pod spec: all capabilities dropped except SYS_PTRACE (to read the kubelet's
# /proc/<pid>/fd, exe and cwd, which the kernel guards with a ptrace access check) and
# DAC_READ_SEARCH (to read root-only files without owning them); readOnlyRootFilesystem;
# allowPrivilegeEscalation: false. The image has no shell and no other file.
# hadolint ignore=DL3002
USER 0:0

# The metrics port (/metrics, /healthz, /readyz).
EXPOSE 10358

ENTRYPOINT ["/kubelet-sentinel"]
CMD ["serve", "--host-root", "/host"]
