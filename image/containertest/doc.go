// Package containertest tests osgate's container image (image/container)
// from the outside, with Podman. Its tests carry the build tag
// "containertest" and read where the image's archives are from the
// environment, so `go test ./...` does not run them; the Makefile does:
//
//	make container-test   builds the image for every architecture, loads
//	                      the amd64 archive into a Podman storage of the
//	                      test's own and runs it (TestContainer); checks
//	                      each archive's binaries (TestArchives) and the
//	                      multi-arch OCI archive (TestOCIArchive)
//
// They fail, never skip, when Podman or a peer is missing.
package containertest
