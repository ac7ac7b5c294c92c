# moat-coordinator, FROM scratch: the static binary, CA certificates, and
# /etc/passwd and /etc/group naming the non-root user it runs as (moat,
# uid and gid 65532). The build context is the one scripts/images.sh
# stages (`make images`): rootfs/ and an empty state/.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/moatmesh/moat
LABEL org.opencontainers.image.title="moat-coordinator" \
      org.opencontainers.image.description="moat coordinator: sign-in, policy, netmaps, audit and the relay" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY rootfs/ /
# The data directory (SQLite and the seal key when no PostgreSQL and no
# --seal-key-file are given): owned by moat, mount a volume here.
COPY --chown=65532:65532 state/ /var/lib/moat-coordinator/
ENV MOAT_DATA_DIR=/var/lib/moat-coordinator
WORKDIR /var/lib/moat-coordinator
USER 65532:65532
EXPOSE 8443/tcp 3478/udp
ENTRYPOINT ["/usr/local/bin/moat-coordinator"]
CMD ["serve"]
