// mproc-node: a node that waits for work from other hosts (see mproc/cluster_node_main.hpp).
#include <mproc/cluster_node_main.hpp>

int main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }
