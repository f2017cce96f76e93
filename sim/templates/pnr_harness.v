`timescale 1 ns / 1 ps
// fraudfpga place-and-route harness around {top} (generated; not for use in a product).
// An FPGA has far fewer pins than the core has input and output bits, and nextpnr times
// register-to-register paths of a placed design. The harness feeds the {in_bits}-bit input bus
// from a serial-in shift register and reduces the {out_bits} output bits with XOR into one
// register, so every core input and output stays live (nothing is optimised away) and the
// timed paths are the core's own, with 5 pins.
module {harness} (
    input  wire clk,
    input  wire rst,
    input  wire serial_in,
    input  wire serial_valid,
    output reg  serial_out
);
    reg [{in_msb}:0] in_shift;
    reg in_valid;
    always @(posedge clk) begin
        in_shift <= {{in_shift[{in_msb_m1}:0], serial_in}};
        in_valid <= serial_valid;
    end
    wire out_valid;
    wire [{out_msb}:0] out_data;
    {top} dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_data(in_shift),
        .out_valid(out_valid), .out_data(out_data));
    always @(posedge clk) serial_out <= ^{{out_valid, out_data}};
endmodule
