# Builds the catalog's PYNQ-Z2 overlay (bitstreams/overlays/pynq-z2-ws8x8.json) with Vivado:
# ws_top packaged as IP, a block design with the Zynq PS, three AXI DMAs (activations and weights
# memory-to-stream, outputs stream-to-memory) and the array's AXI4-Lite slave on GP0, then
# synthesis, implementation and the bitstream. The IP names below are the manifest's "ip" names.
#
#   vivado -mode batch -source bitstreams/vivado/pynq_z2_ws8x8.tcl -tclargs <repo> <out-dir>
#
# Needs Vivado (2020.2 or later) with the PYNQ-Z2 board files installed; it cannot run on the
# project's build machines. Writes <out-dir>/pynq-z2-ws8x8.bit and .hwh: copy both beside the
# manifest and record their sha256 there.

if {$argc != 2} { error "usage: -tclargs <repo> <out-dir>" }
set repo [file normalize [lindex $argv 0]]
set out [file normalize [lindex $argv 1]]
set part xc7z020clg400-1
# the array: 8x8 int8, 32-bit accumulators, 256 accumulator rows (the manifest's params)
array set P {R 8 C 8 DB 8 ACC 32 DEPTH 256}
set rtl [list $repo/systolic/rtl/ws_pe.v $repo/systolic/rtl/ws_fifo.v $repo/systolic/rtl/ws_top.v]

# ---- package ws_top as IP (AXI interfaces inferred from the s_axil_/s_axis_/m_axis_ prefixes)
create_project -force ws_ip $out/ws_ip -part $part
add_files -norecurse $rtl
set_property top ws_top [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir $out/ws_ip/ip -vendor morphware.org -library user -taxonomy /UserIP
set core [ipx::current_core]
set_property name ws_top $core
set_property version 1.0 $core
foreach bus {s_axil s_axis_a s_axis_w m_axis_o} {
    ipx::associate_bus_interfaces -busif $bus -clock aclk $core
}
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::save_core $core
close_project

# ---- block design
create_project -force pynq_z2_ws8x8 $out/proj -part $part
set_property board_part tul.com.tw:pynq-z2:part0:1.0 [current_project]
set_property ip_repo_paths $out/ws_ip/ip [current_project]
update_ip_catalog
create_bd_design overlay

set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 processing_system7_0]
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
    -config {make_external "FIXED_IO, DDR" apply_board_preset "1"} $ps
set_property -dict [list CONFIG.PCW_USE_S_AXI_HP0 {1} CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100} \
    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} CONFIG.PCW_IRQ_F2P_INTR {1}] $ps

set ws [create_bd_cell -type ip -vlnv morphware.org:user:ws_top:1.0 ws_top_0]
set_property -dict [list CONFIG.R $P(R) CONFIG.C $P(C) CONFIG.DB $P(DB) CONFIG.ACC $P(ACC) \
    CONFIG.DEPTH $P(DEPTH)] $ws

# stream widths in bits: activations R*DB, weights C*32, outputs C*32
set a_bits [expr {$P(R) * $P(DB)}]
set wo_bits [expr {$P(C) * 32}]
proc dma {name dir bits} {
    set d [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 $name]
    set mm2s [expr {$dir eq "mm2s" ? 1 : 0}]
    set_property -dict [list CONFIG.c_include_sg {0} CONFIG.c_sg_length_width {26} \
        CONFIG.c_include_mm2s $mm2s CONFIG.c_include_s2mm [expr {1 - $mm2s}] \
        CONFIG.c_m_axi_mm2s_data_width {64} CONFIG.c_m_axi_s2mm_data_width {64} \
        CONFIG.c_m_axis_mm2s_tdata_width $bits CONFIG.c_s_axis_s2mm_tdata_width $bits \
        CONFIG.c_mm2s_burst_size {16} CONFIG.c_s2mm_burst_size {16}] $d
    return $d
}
dma axi_dma_a mm2s $a_bits
dma axi_dma_w mm2s $wo_bits
dma axi_dma_o s2mm $wo_bits
connect_bd_intf_net [get_bd_intf_pins axi_dma_a/M_AXIS_MM2S] [get_bd_intf_pins ws_top_0/s_axis_a]
connect_bd_intf_net [get_bd_intf_pins axi_dma_w/M_AXIS_MM2S] [get_bd_intf_pins ws_top_0/s_axis_w]
connect_bd_intf_net [get_bd_intf_pins ws_top_0/m_axis_o] [get_bd_intf_pins axi_dma_o/S_AXIS_S2MM]

# control: the array and the DMAs' registers on GP0; DMA data on HP0; one clock (FCLK0)
foreach slave {ws_top_0/s_axil axi_dma_a/S_AXI_LITE axi_dma_w/S_AXI_LITE axi_dma_o/S_AXI_LITE} {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
        -config {Master "/processing_system7_0/M_AXI_GP0" Clk "Auto"} [get_bd_intf_pins $slave]
}
foreach master {axi_dma_a/M_AXI_MM2S axi_dma_w/M_AXI_MM2S axi_dma_o/M_AXI_S2MM} {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 \
        -config {Slave "/processing_system7_0/S_AXI_HP0" Clk "Auto"} [get_bd_intf_pins $master]
}
apply_bd_automation -rule xilinx.com:bd_rule:clkrst -config {Clk "/processing_system7_0/FCLK_CLK0"} \
    [get_bd_pins ws_top_0/aclk]

# interrupts: the three DMAs and the array's DONE
set irq [create_bd_cell -type ip -vlnv xilinx.com:ip:xlconcat:2.1 irq_concat]
set_property CONFIG.NUM_PORTS {4} $irq
connect_bd_net [get_bd_pins axi_dma_a/mm2s_introut] [get_bd_pins irq_concat/In0]
connect_bd_net [get_bd_pins axi_dma_w/mm2s_introut] [get_bd_pins irq_concat/In1]
connect_bd_net [get_bd_pins axi_dma_o/s2mm_introut] [get_bd_pins irq_concat/In2]
connect_bd_net [get_bd_pins ws_top_0/irq] [get_bd_pins irq_concat/In3]
connect_bd_net [get_bd_pins irq_concat/dout] [get_bd_pins processing_system7_0/IRQ_F2P]

assign_bd_address
validate_bd_design
save_bd_design

# ---- implementation
set bd [get_files overlay.bd]
make_wrapper -files $bd -top
add_files -norecurse [file join [file dirname [file dirname $bd]] overlay hdl overlay_wrapper.v]
set_property top overlay_wrapper [current_fileset]
launch_runs impl_1 -to_step write_bitstream -jobs 4
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} { error "implementation failed" }

file mkdir $out
file copy -force [glob $out/proj/pynq_z2_ws8x8.runs/impl_1/*.bit] $out/pynq-z2-ws8x8.bit
file copy -force [lindex [glob -nocomplain $out/proj/pynq_z2_ws8x8.gen/sources_1/bd/overlay/hw_handoff/*.hwh \
    $out/proj/pynq_z2_ws8x8.srcs/sources_1/bd/overlay/hw_handoff/*.hwh] 0] $out/pynq-z2-ws8x8.hwh
open_run impl_1
report_utilization -file $out/utilization.txt
puts "wrote $out/pynq-z2-ws8x8.bit and .hwh; utilisation in $out/utilization.txt"
