# One image for both services (and the Jira sandbox): static binaries on a
# distroless, non-root base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/capture ./cmd/ticketer ./cmd/jira-sandbox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY deploy/mapping.yaml /etc/cowjacket/mapping.yaml
ENV MAPPING_FILE=/etc/cowjacket/mapping.yaml
USER nonroot:nonroot
# The command chooses the service: capture | ticketer | jira-sandbox.
ENTRYPOINT []
CMD ["capture"]
