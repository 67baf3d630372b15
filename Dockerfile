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
      -o /out/akoutpost ./cmd/akoutpost

# distroless/static has CA certificates, /etc/passwd with the nonroot user
# and tzdata, and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/akoutpost /usr/local/bin/akoutpost
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# proxy http/https, LDAP/LDAPS, metrics and health.
EXPOSE 9000 9443 3389 6636 9300
# authentik's images keep temporary files in memory; so does this one.
ENV TMPDIR=/dev/shm/
HEALTHCHECK --interval=5s --retries=20 --start-period=3s \
    CMD ["/usr/local/bin/akoutpost", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/akoutpost"]
