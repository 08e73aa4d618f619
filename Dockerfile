# One image for both services (and the Jira sandbox): static binaries on a
# distroless, non-root base. Tagged by version (deploy/VERSION), which the
# manifests and docker-compose.yml pin; `make image` builds
# cowjacket/formjira:$(VERSION) and the convenience tag `latest`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/capture ./cmd/ticketer ./cmd/jira-sandbox

FROM gcr.io/distroless/static-debian12:nonroot
# The release this image is; `make image` passes deploy/VERSION.
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="cowjacket formjira" \
      org.opencontainers.image.description="capture, ticketer and jira-sandbox: PostgreSQL form rows to Jira tickets through JetStream" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
COPY deploy/mapping.yaml /etc/cowjacket/mapping.yaml
ENV MAPPING_FILE=/etc/cowjacket/mapping.yaml
USER nonroot:nonroot
# The command chooses the service: capture | ticketer | jira-sandbox.
ENTRYPOINT []
CMD ["capture"]
