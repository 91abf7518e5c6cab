/* ocps-shim: the long-lived parent of process tasks; see backends/process/shim.h. */
#include "process/shim.h"

int main(int argc, char **argv)
{
    return shim_main(argc, argv);
}
