/* kvm-caps: KVM_CHECK_EXTENSION on /dev/kvm for each capability number given, as the
 * hardware-KVM lane's init records them (ci/hw-kvm/init). Built static by ci/hw-kvm/run.sh
 * (`cc -O2 -static`), so the initramfs needs no C library for it.
 *
 * Usage: kvm-caps NUMBER...   prints "NUMBER=VALUE" per capability, space-separated, on one line
 *                             (VALUE: what the ioctl returned; 0 = not offered; -1 = the ioctl failed)
 * Exit code: 0 when /dev/kvm answered, 1 when it cannot be opened or has no KVM API 12, 2 on bad usage.
 *
 * Defined here, not taken from <linux/kvm.h>: the build host's headers may predate them.
 *   232 KVM_CAP_MEMORY_FAULT_INFO, 233 KVM_CAP_MEMORY_ATTRIBUTES, 234 KVM_CAP_GUEST_MEMFD,
 *   235 KVM_CAP_VM_TYPES, 236 KVM_CAP_PRE_FAULT_MEMORY (all Linux 6.8-6.10; none in 6.1)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMIO 0xAE
#define KVM_GET_API_VERSION _IO(KVMIO, 0x00)
#define KVM_CHECK_EXTENSION _IO(KVMIO, 0x03)

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: kvm-caps NUMBER...\n");
    return 2;
  }
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) {
    fprintf(stderr, "kvm-caps: open /dev/kvm: %s\n", strerror(errno));
    return 1;
  }
  int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
  if (api != 12) {
    fprintf(stderr, "kvm-caps: KVM_GET_API_VERSION is %d, not 12\n", api);
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    char *end;
    long cap = strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || cap < 0) {
      fprintf(stderr, "kvm-caps: %s is not a capability number\n", argv[i]);
      return 2;
    }
    int v = ioctl(kvm, KVM_CHECK_EXTENSION, cap);
    printf("%s%ld=%d", i > 1 ? " " : "", cap, v < 0 ? -1 : v);
  }
  printf("\n");
  return 0;
}
