# syntax=docker/dockerfile:1
#
# The akoutpost image: one static binary, no shell, running as a non-root
# user. Build with
#
#   docker build -t akoutpost .
#   docker build --build-arg VERSION=2026.2.3 -t akoutpost:2026.2.3 .
#
# VERSION, when set, replaces the authentik version the outpost reports to
# the core. Deploy it by setting the outpost's container_image to the
# image's name (see docs/deploy-kubernetes.md and docs/deploy-compose.md).
#
# On a machine that reaches no registry, the "prebuilt" target takes a
# static binary built beforehand and needs no base image:
#
#   CGO_ENABLED=0 go build -trimpath -o bin/akoutpost ./cmd/akoutpost
#   cp /etc/ssl/certs/ca-certificates.crt bin/
#   mkdir -p bin/root && for t in proxy ldap radius rac; do ln -sf /usr/local/bin/akoutpost bin/root/$t; done
#   DOCKER_BUILDKIT=0 docker build --target prebuilt -t akoutpost .
#
# Both images answer the health checks authentik's Docker controller gives
# outpost containers (/proxy healthcheck, /ldap healthcheck, ...) as well as
# "akoutpost healthcheck".

FROM scratch AS prebuilt
COPY bin/akoutpost /usr/local/bin/akoutpost
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# /proxy, /ldap, /radius and /rac: links to the binary, for authentik's
# health-check commands.
COPY bin/root/ /
USER 65532:65532
EXPOSE 9000 9443 3389 6636 9300
ENV TMPDIR=/dev/shm/
HEALTHCHECK --interval=5s --retries=20 --start-period=3s \
    CMD ["/usr/local/bin/akoutpost", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/akoutpost"]

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w ${VERSION:+-X main.version=${VERSION}}" \
      -o /out/akoutpost ./cmd/akoutpost \
 && mkdir -p /out/root \
 && for t in proxy ldap radius rac; do ln -s /usr/local/bin/akoutpost /out/root/$t; done

# distroless/static has CA certificates, /etc/passwd with the nonroot user
# and tzdata, and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/akoutpost /usr/local/bin/akoutpost
COPY --from=build /out/root/ /
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# proxy http/https, LDAP/LDAPS, metrics and health.
EXPOSE 9000 9443 3389 6636 9300
# authentik's images keep temporary files in memory; so does this one.
ENV TMPDIR=/dev/shm/
HEALTHCHECK --interval=5s --retries=20 --start-period=3s \
    CMD ["/usr/local/bin/akoutpost", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/akoutpost"]
