// The pod sandbox ("pause") process of the test cluster (tests/k8s_cluster.py): containerd needs a
// sandbox image and registry.k8s.io is not reachable here, so the harness builds this static binary
// with the local Go toolchain and wraps it in a one-layer image. Like Kubernetes' own pause.c it
// sleeps until SIGINT/SIGTERM and reaps orphaned children (it is PID 1 when the pod shares its PID
// namespace).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-children:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
