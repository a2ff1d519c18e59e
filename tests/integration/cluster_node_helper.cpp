// A node program for cluster_test.cpp: mproc-node plus the test's actor types.
#include <mproc/cluster_node_main.hpp>

#include "cluster_test_actors.hpp"

int main(int argc, char** argv) { return mproc::cluster::node_main(argc, argv); }
