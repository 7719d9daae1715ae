# Tessera in a container: a Rust build stage, then a small Debian runtime.
#
#   podman build --format docker -t tessera .   # or: docker build -t tessera .
#
# (Podman's default OCI image format has no HEALTHCHECK and drops it with a
# warning: --format docker keeps it.)
#
#   podman run -d --name tessera \
#     -e TESSERA_ADMIN_PASSWORD='change-me' \
#     -v tessera:/var/lib/tessera -p 8080:8080 tessera
#
# * The store is SQLite at /var/lib/tessera/tessera.db, in the volume (with
#   its -wal and -shm files beside it). Keep the volume: it is the data.
#   A bind mount instead of a named volume must be writable by uid 10001
#   (`chown 10001:10001 DIR`). PostgreSQL or Redis instead: set
#   TESSERA_STORE (-e, or --env-file with a file only you can read; both
#   backends are compiled in here). Every other setting is a TESSERA_*
#   variable too (README, "Configuration reference").
# * First start on an empty store: the admin user `admin` is created with
#   TESSERA_ADMIN_PASSWORD; without it a random password is printed once to
#   standard error (`podman logs tessera`). The variable is read only then.
# * More users: `podman exec tessera tessera user add NAME --admin`
#   (password: -e TESSERA_PASSWORD=… on the exec, or `-i` and one line of
#   standard input); it opens the same store file.
# * `podman stop` sends SIGTERM: the server turns not-ready and drains for
#   --shutdown-grace (10 s). Stop waits 10 s before SIGKILL, no more than
#   the grace: give it more (`podman stop -t 15`, `docker stop -t 15`,
#   `--stop-timeout 15` on run) so that a full drain is never cut.
# * The build stage and the runtime must be the same Debian release (the
#   binary links the build stage's glibc): bookworm both.

# ---- build ---------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target/ live in cache mounts (BuildKit, or Podman/Buildah),
# so a rebuild after a source change recompiles only the workspace crates. The
# binary is copied out of the cache mount within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tessera-server --features postgres,redis \
 && install -D -m 0755 target/release/tessera /out/tessera

# ---- runtime -------------------------------------------------------------
# debian:bookworm-slim rather than distroless: it matches the build stage's
# glibc and carries bash, which the health check below uses; the binary needs
# nothing else (SQLite is compiled in; webhooks' TLS is rustls with built-in
# roots, so no ca-certificates package).
FROM debian:bookworm-slim AS runtime

# A fixed, unprivileged uid/gid, so a bind-mounted directory can be chowned
# to it ahead of time. The store's directory belongs to it before VOLUME, so a
# new named volume starts with that owner.
RUN groupadd --gid 10001 tessera \
 && useradd --no-log-init --uid 10001 --gid tessera --home-dir /var/lib/tessera \
      --no-create-home --shell /usr/sbin/nologin tessera \
 && install -d -m 0700 -o tessera -g tessera /var/lib/tessera

COPY --from=build /out/tessera /usr/local/bin/tessera

ENV TESSERA_LISTEN=0.0.0.0:8080 \
    TESSERA_STORE=sqlite:///var/lib/tessera/tessera.db

VOLUME /var/lib/tessera
WORKDIR /var/lib/tessera
USER 10001:10001
EXPOSE 8080

# The health check is `GET /health/ready` (200 when ready; 503 while draining
# or when the store does not answer) over bash's /dev/tcp: no curl or wget,
# so no apt layer and nothing more to patch in the image. It asks 127.0.0.1 at
# the port of TESSERA_LISTEN; if you bind a single other address, override it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/bin/bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${TESSERA_LISTEN##*:}\" && printf 'GET /health/ready HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# The server handles SIGTERM itself (it is PID 1 here and handles SIGTERM and
# SIGINT): not ready at once, requests in flight answered, the rest cut after
# --shutdown-grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
