package bench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A command may hold spaces and parentheses; the times are fields 14 to 17.
func TestStatCPU(t *testing.T) {
	line := "4242 (post gres) (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 31 70 5 20 0 1 0 100 0 0\n"
	own, reaped, ok := statCPU(line)
	if !ok || own != 2810*time.Millisecond || reaped != 750*time.Millisecond {
		t.Errorf("statCPU: own %v, reaped %v, %v; want 2.81s, 750ms, true", own, reaped, ok)
	}
	if _, _, ok := statCPU("4242 (short) S 1 2"); ok {
		t.Error("statCPU of a short line: ok")
	}
}

// A child that spins shows in cpuOf once it has exited; this process in procCPU.
func TestCPUOfProcesses(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if got := cpuOf(cmd.ProcessState); got <= 0 {
		t.Errorf("cpuOf a child that spun: %v", got)
	}
	if got := procCPU(os.Getpid()); got <= 0 {
		t.Errorf("procCPU of this process: %v", got)
	}
}
