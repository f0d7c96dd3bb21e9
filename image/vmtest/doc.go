// Package vmtest tests the appliance images from the outside. Its tests
// carry the build tag "vmtest" and read the image paths from the
// environment, so `go test ./...` does not run them; the Makefile does:
//
//	make vm-test      builds the amd64 image, boots it in qemu (TCG) and
//	                  drives it from the host (TestVM)
//	make image-test   builds the Raspberry Pi image, checks the file
//	                  (TestRPiImage) and boots it under qemu's raspi3b
//	                  machine, testing it from the host (TestRPiBoot)
//	make vm-test-ota  builds v1, v2 and an unhealthy v3 of the amd64 image,
//	                  serves releases with nginx and shows the OTA update,
//	                  its confirmation and its rollback in qemu (TestOTA)
//
// Both fail, never skip, when a tool they need is missing.
package vmtest
