`timescale 1 ns / 1 ps
// fraudfpga place-and-route harness around {top} (generated; not for use in a product).
// An FPGA has far fewer pins than the core has input and output bits, and nextpnr times
// register-to-register paths of a placed design. The harness drives {top}'s first 1-bit input
// from a register of the serial_valid pin and its other inputs ({shift_bits} bits) from a
// serial-in shift register, and reduces its {out_bits} output bits with XOR into one register,
// so every input and output stays live (nothing is optimised away) and the timed paths are the
// design's own, with 5 pins.
module {harness} (
    input  wire clk,
    input  wire rst,
    input  wire serial_in,
    input  wire serial_valid,
    output reg  serial_out
);
    reg [{shift_msb}:0] in_shift;
    reg first_input;
    always @(posedge clk) begin
        in_shift <= {{in_shift[{shift_msb_m1}:0], serial_in}};
        first_input <= serial_valid;
    end
    wire [{shift_bits}:0] drive = {{in_shift, first_input}};
{output_wires}
    {top} dut (
{connections}
    );
    always @(posedge clk) serial_out <= ^{{{output_list}}};
endmodule
